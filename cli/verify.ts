// depot-ai verify REGISTRY/NAME[:TAG|@DIGEST]... | --all: rebuild each image from Hugging Face at
// the revision its index is labelled with (org.opencontainers.image.revision), into a sink that
// discards the bytes, and compare the index digests; with --provenance, also check the attached
// Sigstore-signed SLSA provenance (trust/check.ts). The Hub repository is the one asked for (the
// name, or with --all the catalog entry and its sha), never the image's own labels, which must
// agree with it. Every registry read goes through client/'s RegistryClient (each byte checked
// against its digest) within one --deadline per image, and a revision tag that moved fails the
// image. Exit status: 0 all identical (and attested), 1 any difference or failure, 2 usage.
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DEFAULT_CATALOG, imageName, loadCatalog, type ModelEntry } from '../models/catalog.ts';
import { isRevision } from '../models/revision.ts';
import { makeImage } from '../builder/build.ts';
import { ANNOTATION, type ImageIndex, type ImageManifest } from '../image/oci.ts';
import { registryCredentials } from '../client/credentials.ts';
import { parseImageReference, RegistryClient, RemoteError, type ImageReference } from '../client/remote.ts';
import { ContentCache } from '../sources/content-cache.ts';
import { DEFAULT_CACHE } from '../sources/content-cache.ts';
import { HuggingFaceSource } from '../sources/huggingface.ts';
import { checkProvenance, registryAttestations, type AttestationStore } from '../trust/check.ts';
import { tocFileDigests, type ProvenanceExpectation } from '../trust/provenance.ts';
import { publicKeyFromPem, type TrustPolicy } from '../trust/signing.ts';
import { parseCommandArgs, UsageError } from './args.ts';
import { sourceDateEpoch } from './build.ts';
import { printable } from './printable.ts';
import { formatTable } from './table.ts';

const HUB_SOURCE = 'https://huggingface.co/';

/** The longest --deadline: 2^31-1 ms, the most a timer holds, in whole seconds. */
const MAX_DEADLINE_S = 2_147_483;
/** The default of --deadline: seconds all registry reads of one image may take together (the rebuild from the Hub is not counted). */
const DEFAULT_DEADLINE_S = 120;

/** An image to verify, and with --all the catalog entry it must be (name and sha). */
interface Target {
  ref: ImageReference;
  entry?: Pick<ModelEntry, 'name' | 'sha'>;
}

/** A failure of the image itself (not of reading it): reported as DIFFERENT, not as failed. */
class DifferentError extends Error {}

interface Row {
  image: string;
  revision: string;
  digest: string;
  result: string;
  provenance: string;
  failed: boolean;
}

export async function verifyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    all: { type: 'boolean', default: false },
    registry: { type: 'string', default: 'depot.ai' },
    catalog: { type: 'string', default: DEFAULT_CATALOG },
    sample: { type: 'string' },
    week: { type: 'string' },
    provenance: { type: 'boolean', default: false },
    key: { type: 'string' },
    identity: { type: 'string' },
    insecure: { type: 'boolean', default: false },
    cache: { type: 'string', default: process.env.DEPOT_CACHE ?? DEFAULT_CACHE },
    prefix: { type: 'string' },
    deadline: { type: 'string', default: String(DEFAULT_DEADLINE_S) },
  });
  const deadlineMs = Number(values.deadline) * 1000;
  // setTimeout holds at most 2^31-1 ms; a longer one fires at once.
  if (!(deadlineMs > 0 && deadlineMs <= MAX_DEADLINE_S * 1000)) throw new UsageError(`--deadline must be a number of seconds from 0 to ${MAX_DEADLINE_S}, not "${values.deadline}"`);
  if (values.all === positionals.length > 0) throw new UsageError('verify takes REGISTRY/NAME[:TAG|@DIGEST]... or --all: depot-ai verify depot.ai/gpt2');
  if (values.sample !== undefined && !values.all) throw new UsageError('--sample picks from the catalog: use it with --all');
  if (values.provenance && !values.key === !values.identity) throw new UsageError('--provenance needs the signer: --key PUBLIC.pem (a local key) or --identity URI (the keyless workflow identity)');
  const policy: TrustPolicy | undefined = !values.provenance ? undefined : values.key ? { key: await publicKey(values.key) } : { identity: values.identity! };

  if (values.prefix !== undefined && values.all) throw new UsageError('--prefix names the repository prefix of the images given; with --all it is --registry HOST/PREFIX');
  const targets: Target[] = values.all ? await catalogTargets(values.catalog, values.registry, values.sample, values.week) : positionals.map((p) => ({ ref: parseImageReference(p) }));
  const cache = new ContentCache(values.cache);
  const epoch = sourceDateEpoch();
  const rows: Row[] = [];
  for (const target of targets) {
    const image = `${target.ref.registry}/${target.ref.repository}`;
    const row = await verifyOne(target).catch((error: Error): Row => {
      if (process.env.DEPOT_DEBUG) console.error(error);
      process.stderr.write(`depot-ai: ${printable(image)}: ${printable(error.message)}\n`);
      const result = error instanceof DifferentError ? `DIFFERENT: ${error.message}` : `failed: ${error.message}`;
      return { image, revision: '-', digest: '-', result, provenance: '-', failed: true };
    });
    rows.push(row);
  }
  const table = rows.map((r) => [r.image, r.revision.slice(0, 12), r.digest.slice(0, 19), r.result, ...(policy ? [r.provenance] : [])].map(printable));
  console.log(formatTable(['IMAGE', 'REVISION', 'DIGEST', 'RESULT', ...(policy ? ['PROVENANCE'] : [])], table));
  return rows.some((r) => r.failed) ? 1 : 0;

  async function verifyOne({ ref, entry }: Target): Promise<Row> {
    const image = `${ref.registry}/${ref.repository}`;
    // Each request ends by the deadline too, so a read given up on does not outlive it by more.
    const client = new RegistryClient(ref.registry, { insecure: values.insecure, credentials: await registryCredentials(ref.registry), deadlineMs });
    const within = readBudget(deadlineMs, `the registry's answers took more than --deadline ${values.deadline} s in all`);
    const top = (await within(() => client.manifest(ref.repository, ref.reference)))!;
    if (!('manifests' in top.json)) throw new RemoteError(`${image}:${ref.reference} is not an image index`);
    const index = top.json;
    const revision = index.annotations?.[ANNOTATION.revision];
    const source = index.annotations?.[ANNOTATION.source];
    if (!revision || !source?.startsWith(HUB_SOURCE)) throw new Error(`the index has no Hugging Face source and revision labels (${ANNOTATION.source}, ${ANNOTATION.revision})`);
    if (!isRevision(revision)) throw new DifferentError(`the index is labelled revision "${revision}", not a Hub commit (40 lower-case hex digits)`);
    const name = source.slice(HUB_SOURCE.length);
    // The Hub repository is the one asked for, never the image's own word for it.
    if (entry && name !== entry.name) throw new DifferentError(`the image is of ${name} (its source label), not the catalog's ${entry.name}`);
    if (!entry) {
      const asked = askedImage(ref.repository, values.prefix);
      if (imageName(name) !== asked) throw new DifferentError(`the image is of ${name} (its source label), not ${asked} as asked`);
    }
    if (entry && revision !== entry.sha) throw new DifferentError(`the image is of revision ${revision}, but the catalog pins ${entry.name} at ${entry.sha}`);
    await within(() => checkRevisionTag(client, ref, top.digest, revision));
    let files: Promise<Record<string, string>> | undefined;
    const remoteFiles = () => (files ??= within(() => layerFiles(client, ref.repository, index)));

    const hub = new HuggingFaceSource(name, revision, { cache });
    const { image: rebuilt, layer } = await makeImage({ name, source: hub, sha: revision, epoch }, { write: async () => {} });
    const identical = rebuilt.index.digest === top.digest;
    let result = 'identical';
    if (!identical) {
      const changed = differingFiles(tocFileDigests(layer.toc), await remoteFiles());
      result = `DIFFERENT: rebuilt ${rebuilt.index.digest}${changed.length ? `; files differ: ${changed.slice(0, 5).join(', ')}${changed.length > 5 ? ', ...' : ''}` : ''}`;
    }
    const provenance = policy ? await within(() => provenanceResult(bounded(registryAttestations(client, ref.repository), within), { indexDigest: top.digest, name, revision }, remoteFiles, policy)) : '';
    if (provenance.startsWith('REJECTED: ')) process.stderr.write(`depot-ai: provenance: ${printable(provenance.slice('REJECTED: '.length))}\n`);
    if (!identical) process.stderr.write(`depot-ai: ${printable(image)}: ${printable(result)}\n`);
    return { image, revision, digest: top.digest, result, provenance, failed: !identical || (policy !== undefined && provenance !== 'verified') };
  }
}

type ReadBudget = <T>(read: () => Promise<T>) => Promise<T>;

/**
 * One time budget of `ms` for a sequence of reads: `within(read)` races each read against what is
 * left of it and rejects with RemoteError(`message`) when it runs out; once it has, no read
 * starts (so work given up on stops at its next read). Nested reads count once.
 */
function readBudget(ms: number, message: string): ReadBudget {
  let left = ms;
  let depth = 0;
  return async (read) => {
    if (left <= 0) throw new RemoteError(message);
    if (depth > 0) return read();
    depth++;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([read(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new RemoteError(message)), Math.max(left, 0))))]);
    } finally {
      clearTimeout(timer);
      left -= performance.now() - started;
      depth--;
    }
  };
}

/**
 * A revision tag never moves: the image's revision tag (its Hub commit sha, when the registry has
 * it) must point at the index verified, and an index read by a revision tag must be of that
 * revision. Throws RemoteError saying which tag moved where.
 */
async function checkRevisionTag(client: RegistryClient, ref: ImageReference, indexDigest: string, revision: string): Promise<void> {
  const image = `${ref.registry}/${ref.repository}`;
  if (isRevision(ref.reference) && ref.reference !== revision) throw new RemoteError(`the revision tag ${image}:${ref.reference} points at ${indexDigest}, an image of revision ${revision}: a revision tag never moves`);
  const fixed = await client.manifest(ref.repository, revision, { optional: true });
  if (fixed && fixed.digest !== indexDigest) throw new RemoteError(`the revision tag ${image}:${revision} points at ${fixed.digest}, not at ${indexDigest} (${ref.reference}) with that revision: a revision tag never moves`);
}

/**
 * The image name (models/catalog.ts imageName of a Hub repository) that a repository asked for
 * stands for: the repository after `prefix` when given; else its last two parts (`owner/name`),
 * or its only part (a legacy bare name). Throws UsageError when the repository is not under `prefix`.
 */
export function askedImage(repository: string, prefix?: string): string {
  if (prefix !== undefined) {
    const clean = prefix.replace(/^\/+|\/+$/g, '');
    if (clean === '') return repository;
    if (!repository.startsWith(`${clean}/`)) throw new UsageError(`${repository} is not under --prefix ${prefix}`);
    return repository.slice(clean.length + 1);
  }
  return repository.split('/').slice(-2).join('/');
}

/** Path -> `sha256:<hex>` of every file of the index's first image, from its verified eStargz TOC. */
async function layerFiles(client: RegistryClient, repository: string, index: ImageIndex): Promise<Record<string, string>> {
  const first = index.manifests[0];
  if (!first) throw new RemoteError(`${client.registry}/${repository} has an empty index`);
  const manifest = (await client.manifest(repository, first.digest, { expected: first }))!.json as ImageManifest;
  const layer = manifest.layers?.[0];
  const found = layer && (await client.layerToc(repository, layer));
  if (!found) throw new RemoteError(`${client.registry}/${repository}@${first.digest} has no eStargz layer with a TOC digest`);
  return tocFileDigests(found.toc);
}

/**
 * 'verified' when one attestation the registry lists for the index (trust/check.ts, the first
 * MAX_REFERRERS) is signed under `policy` and describes the image; else what is wrong.
 */
async function provenanceResult(store: AttestationStore, expected: ProvenanceExpectation, files: () => Promise<Record<string, string>>, policy: TrustPolicy): Promise<string> {
  const check = await checkProvenance(store, expected, policy, files);
  if ('verified' in check) return 'verified';
  if ('none' in check) return 'none attached';
  return `REJECTED: ${check.rejected}`;
}

/** `store` with every read inside the image's read budget (none starts once it has run out). */
function bounded(store: AttestationStore, within: ReadBudget): AttestationStore {
  return {
    referrers: (subject) => within(() => store.referrers(subject)),
    artifact: (descriptor) => within(() => store.artifact(descriptor)),
    blob: (descriptor, max) => within(() => store.blob(descriptor, max)),
  };
}

function differingFiles(a: Record<string, string>, b: Record<string, string>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((p) => a[p] !== b[p]).sort();
}

async function publicKey(file: string): Promise<KeyObject> {
  const pem = await readFile(file, 'utf8').catch((error: Error) => {
    throw new UsageError(`--key ${file}: ${error.message}`);
  });
  try {
    return publicKeyFromPem(pem);
  } catch {
    throw new UsageError(`--key ${file} is not a PEM public key`);
  }
}

/**
 * The catalog's images on `registry` at their tags, each with its entry; with `sample` N, the
 * N-entry slice for the ISO week (`week`, default this week), so that weekly runs go round the
 * whole catalog.
 */
async function catalogTargets(catalog: string, registry: string, sample?: string, week?: string): Promise<Target[]> {
  const models = await loadCatalog(catalog);
  const refs = models.map((m) => ({ ref: { ...parseImageReference(`${registry}/${m.image}`), reference: m.tag }, entry: { name: m.name, sha: m.sha } }));
  if (sample === undefined) return refs;
  const n = Number(sample);
  const w = week === undefined ? isoWeek(new Date()) : Number(week);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--sample must be a whole number of images, not "${sample}"`);
  if (!Number.isInteger(w) || w < 0) throw new UsageError(`--week must be a whole number, not "${week}"`);
  const start = (w * n) % Math.max(refs.length, 1);
  return Array.from({ length: Math.min(n, refs.length) }, (_, i) => refs[(start + i) % refs.length]);
}

/** The ISO 8601 week number (1-53) of a date. */
export function isoWeek(date: Date): number {
  const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  d.setUTCDate(d.getUTCDate() + 4 - (d.getUTCDay() || 7));
  return Math.ceil(((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86400000 + 1) / 7);
}
