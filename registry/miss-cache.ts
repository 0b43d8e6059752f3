// A short memory of blobs the upstream did not have, so a burst of requests for digests nobody has
// costs one upstream request and one Durable Object each per isolate and TTL, not one per request.

/** Keys remembered for `ttlMs` milliseconds; at most `max` of them (the oldest are forgotten first). */
export class MissCache {
  private expiry = new Map<string, number>();

  constructor(
    private ttlMs: number,
    private max: number,
    private now: () => number = Date.now,
  ) {}

  /** Whether `key` missed less than ttlMs ago. */
  has(key: string): boolean {
    const until = this.expiry.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.expiry.delete(key);
    return false;
  }

  add(key: string): void {
    this.expiry.delete(key); // re-inserted last: Map order is the eviction order
    if (this.expiry.size >= this.max) this.expiry.delete(this.expiry.keys().next().value!);
    this.expiry.set(key, this.now() + this.ttlMs);
  }
}
