// The one error the client throws: a sentence a user can act on, with the registry's HTTP status
// (when it answered) so callers can tell "not there" (404) from "failed".

export class RemoteError extends Error {
  /** The HTTP status, when the registry answered. */
  readonly status?: number;

  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
  }
}

/** The registry answered a Range request with the whole blob (200): it does not serve ranges. */
export class RangeIgnored extends RemoteError {}
