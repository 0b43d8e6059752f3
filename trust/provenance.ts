// What an image's provenance says and how it is checked: an in-toto Statement v1
// (https://in-toto.io/Statement/v1) whose subject is the image index and whose predicate is
// SLSA Provenance v1 (https://slsa.dev/provenance/v1): the builder and its version, the catalog
// entry, the Hub repository and commit, and the sha256 of every file in the image.
// Pure format: no I/O; the signing and the registry side live beside it.
import { NO_PREFETCH_LANDMARK, type Toc } from '../image/estargz.ts';
import { isDigest } from '../image/oci.ts';
import { imageName } from '../models/catalog.ts';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** The DSSE payloadType of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** The buildType naming how depot.ai builds an image (its meaning is this repository's DESIGN.md). */
export const BUILD_TYPE = 'https://depot.ai/build/v1';

export interface ProvenanceInput {
  /** The image name as pulled, e.g. `depot.ai/bert-base-uncased`, and the index digest. */
  image: string;
  indexDigest: string;
  /** The catalog entry as built (name, sha, tag...). */
  entry: { name: string; sha: string; tag: string } & Record<string, unknown>;
  /** Path -> `sha256:<hex>` of every regular file in the layer. */
  files: Record<string, string>;
  builder: { id: string; version: string };
  /** The CI run (e.g. a GitHub Actions run URL) when known. */
  invocationId?: string;
  startedOn: Date;
  finishedOn: Date;
}

export interface Statement {
  _type: typeof STATEMENT_TYPE;
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: typeof SLSA_PROVENANCE_V1;
  predicate: {
    buildDefinition: {
      buildType: string;
      externalParameters: { entry: ProvenanceInput['entry'] };
      resolvedDependencies: { uri: string; digest: Record<string, string>; name?: string }[];
    };
    runDetails: {
      builder: { id: string; version: Record<string, string> };
      metadata: { invocationId?: string; startedOn: string; finishedOn: string };
    };
  };
}

export class ProvenanceError extends Error {}

/** The repository URL a Hub model resolves to, as in the image's source label. */
function hubRepository(name: string): string {
  return `https://huggingface.co/${name}`;
}

export function provenanceStatement(input: ProvenanceInput): Statement {
  const files = Object.keys(input.files).sort();
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: input.image, digest: { sha256: hex(input.indexDigest) } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: { entry: input.entry },
        resolvedDependencies: [
          { uri: `git+${hubRepository(input.entry.name)}@${input.entry.sha}`, digest: { gitCommit: input.entry.sha } },
          ...files.map((path) => ({ uri: `${hubRepository(input.entry.name)}/resolve/${input.entry.sha}/${path}`, name: path, digest: { sha256: hex(input.files[path]) } })),
        ],
      },
      runDetails: {
        builder: { id: input.builder.id, version: { 'depot-ai': input.builder.version } },
        metadata: { ...(input.invocationId ? { invocationId: input.invocationId } : {}), startedOn: input.startedOn.toISOString(), finishedOn: input.finishedOn.toISOString() },
      },
    },
  };
}

/** The facts a reader (the CLI, a model page) shows: who built it, from which commit, when. */
export interface ProvenanceSummary {
  subject: string;
  /** The subject's name as built (e.g. `depot.ai/gpt2`). */
  subjectName: string;
  /** The catalog entry's Hub name the statement was built from. */
  entryName: string;
  hubRepository: string;
  commit: string;
  builderId: string;
  builderVersion: string;
  invocationId?: string;
  finishedOn: string;
  /** Path -> `sha256:<hex>`. */
  files: Record<string, string>;
}

/** Parse a DSSE payload as our statement; throws ProvenanceError naming the first thing that is off. */
export function parseStatement(payload: Buffer | string): ProvenanceSummary {
  let s: Statement;
  try {
    s = JSON.parse(payload.toString()) as Statement;
  } catch {
    throw new ProvenanceError('the attestation payload is not JSON');
  }
  if (s?._type !== STATEMENT_TYPE) throw new ProvenanceError(`the attestation is not an in-toto Statement v1 (_type ${JSON.stringify(s?._type)})`);
  if (s.predicateType !== SLSA_PROVENANCE_V1) throw new ProvenanceError(`the attestation's predicate is not SLSA provenance v1 (${JSON.stringify(s.predicateType)})`);
  const subject = s.subject?.[0]?.digest?.sha256;
  const entryName = s.predicate?.buildDefinition?.externalParameters?.entry?.name;
  const deps = s.predicate?.buildDefinition?.resolvedDependencies;
  const run = s.predicate?.runDetails;
  const source = deps?.[0];
  if (!subject || typeof entryName !== 'string' || !Array.isArray(deps) || !source?.digest?.gitCommit || !run?.builder?.id) throw new ProvenanceError('the attestation lacks its subject, source commit or builder');
  const files: Record<string, string> = {};
  for (const dep of deps.slice(1)) if (dep.name && dep.digest?.sha256) files[dep.name] = `sha256:${dep.digest.sha256}`;
  return {
    subject: `sha256:${subject}`,
    subjectName: String(s.subject[0].name ?? ''),
    entryName,
    hubRepository: source.uri.replace(/^git\+/, '').replace(/@[0-9a-f]+$/, ''),
    commit: source.digest.gitCommit,
    builderId: run.builder.id,
    builderVersion: run.builder.version?.['depot-ai'] ?? '',
    invocationId: run.metadata?.invocationId,
    finishedOn: run.metadata?.finishedOn ?? '',
    files,
  };
}

/** What a statement must describe: the index, the Hub repository (`Org/Name`) and commit it was built from. */
export interface ProvenanceExpectation {
  indexDigest: string;
  name: string;
  revision: string;
}

/**
 * Check a statement against the image it claims to describe: the subject is the index digest and
 * names that model's image (`[REGISTRY/][PREFIX/]IMAGE`), the entry and the source are that Hub
 * repository at that commit, and (when `imageFiles` is given) the files are exactly the image's
 * files with the same digests. Returns the problems ([] = ok).
 */
export function provenanceProblems(summary: ProvenanceSummary, expected: ProvenanceExpectation, imageFiles?: Record<string, string>): string[] {
  const problems: string[] = [];
  const { indexDigest, name, revision } = expected;
  if (summary.subject !== indexDigest) problems.push(`the attestation's subject is ${summary.subject}, not the image ${indexDigest}`);
  const image = imageName(name);
  if (summary.subjectName !== image && !summary.subjectName.endsWith(`/${image}`)) problems.push(`the attestation's subject is named ${summary.subjectName}, not an image of ${name}`);
  if (summary.entryName !== name || summary.hubRepository !== hubRepository(name)) problems.push(`the attestation is about ${summary.entryName} (${summary.hubRepository}), not ${name}`);
  if (summary.commit !== revision) problems.push(`the attestation's commit is ${summary.commit}, not the image's revision ${revision}`);
  if (!imageFiles) return problems;
  for (const [path, digest] of Object.entries(imageFiles)) {
    if (!(path in summary.files)) problems.push(`${path} is in the image but not in the attestation`);
    else if (summary.files[path] !== digest) problems.push(`${path} is ${digest} in the image but ${summary.files[path]} in the attestation`);
  }
  for (const path of Object.keys(summary.files)) if (!(path in imageFiles)) problems.push(`${path} is in the attestation but not in the image`);
  return problems;
}

/** Path -> `sha256:<hex>` of every regular file of a layer, from its eStargz TOC (the files an image holds). */
export function tocFileDigests(toc: Toc): Record<string, string> {
  const files: Record<string, string> = {};
  for (const e of toc.entries) if (e.type === 'reg' && e.name !== NO_PREFETCH_LANDMARK && e.digest) files[e.name] = e.digest;
  return files;
}

function hex(digest: string): string {
  if (!isDigest(digest)) throw new ProvenanceError(`not a sha256 digest: ${digest}`);
  return digest.slice('sha256:'.length);
}
