// The catalog schema: the one place that parses, validates and names models.yaml entries.
// The site, the builder, the registry and the workflows all read the catalog through here.
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
import { isRevision, reservedTagKind } from './revision.ts';

export const DEFAULT_CATALOG = 'models/models.yaml';
export const DEFAULT_TAG = 'latest';
const ENTRY_KEYS = ['name', 'sha', 'tag'] as const;
const MAX_NAME_LENGTH = 96;

export interface ModelEntry {
  /** The Hugging Face repository id, as written (`black-forest-labs/FLUX.1-schnell`). */
  name: string;
  /** The pinned revision: 40 lower-case hex digits. */
  sha: string;
  tag: string;
  /** The image name: the Hugging Face name lower-cased. */
  image: string;
  line: number;
  column: number;
}

export interface CatalogProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

export class CatalogError extends Error {
  constructor(readonly problems: CatalogProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'CatalogError';
  }
}

export function formatProblem(p: CatalogProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

const NAME_PART = /^[A-Za-z0-9_.-]+$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
// The OCI distribution spec's repository name grammar.
const OCI_REPOSITORY = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;

/** The image name for a Hugging Face repository id. */
export function imageName(name: string): string {
  return name.toLowerCase();
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

export function isValidImageName(image: string): boolean {
  return image.length <= 255 && OCI_REPOSITORY.test(image);
}

/**
 * One-segment paths the site serves itself (the homepage, the 404 page, public files, the
 * sitemap, built assets and modules), case-insensitive as some hosts are: a bare model name
 * cannot be one. Nor can a name ending in .html: `/<name>` is served from `<name>.html`, so
 * `/x.html` is the page of the name `x`, whatever page `x.html` has.
 */
export const SITE_PATHS = /^(index|404|robots\.txt|favicon\.svg|sitemap[\w.-]*|_astro|[\w.-]*\.html|[\w.-]*\.mjs)$/i;

/** Why `name` is not a valid Hugging Face repository id, or undefined when it is. */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'name must not be empty';
  if (name.length > MAX_NAME_LENGTH) return `name is ${name.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`;
  const parts = name.split('/');
  if (parts.length > 2) return `name "${name}" has more than one "/": use owner/name or a bare legacy name`;
  for (const part of parts) {
    if (!NAME_PART.test(part)) return `name "${name}" may only contain letters, digits, "-", "_", "." and one "/"`;
    if (part.includes('--') || part.includes('..')) return `name "${name}" must not contain "--" or ".."`;
    if (/^[-.]|[-.]$/.test(part)) return `name "${name}" must not start or end a part with "-" or "."`;
  }
  if (parts.length === 1 && SITE_PATHS.test(name)) return `name "${name}" is a path the site serves itself (a bare name's page is /${name}); Hub names without an owner are legacy ones such as gpt2: give the owner`;
  if (!isValidImageName(imageName(name))) return `name "${name}" does not make a valid image name ("${imageName(name)}")`;
  return undefined;
}


/** Why `tag` is not a valid moving tag (an OCI tag without the form of a revision or referrers tag), or undefined when it is. */
export function tagProblem(tag: string): string | undefined {
  const reserved = reservedTagKind(tag);
  if (reserved === 'referrers') return `tag "${tag}" has the form of a referrers tag (sha256-<digest>): it would replace another image's attestations; use another tag`;
  if (reserved === 'revision') return `tag "${tag}" has the form of a revision (a Hub commit sha): revision tags come from \`sha\` and never move; use another tag`;
  return isValidTag(tag) ? undefined : `tag "${tag}" is not a valid tag: use letters, digits, "_", "." and "-", at most 128, not starting with "." or "-"`;
}

export function shaProblem(sha: string): string | undefined {
  return isRevision(sha) ? undefined : `sha "${sha}" must be a full commit hash: 40 lower-case hex digits`;
}

/**
 * Parse and validate catalog text. Every problem is reported; models is empty when there is any.
 * A plain scalar YAML reads as a number is kept only when its text survives the round trip
 * (`tag: 2`); otherwise (`1.10`, `010`, `1e3`, a 40-digit sha) it is reported with "quote it".
 */
export function parseCatalog(source: string, file = DEFAULT_CATALOG): { models: ModelEntry[]; problems: CatalogProblem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, keepSourceTokens: false, uniqueKeys: true, prettyErrors: false });
  const problems: CatalogProblem[] = [];
  const at = (offset: number | undefined, message: string) => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    problems.push({ file, line, column: col, message });
  };
  const nodeAt = (node: Node | null | undefined, message: string) => at(node?.range?.[0], message);

  for (const error of [...doc.errors, ...doc.warnings]) at(error.pos[0], error.message.split('\n')[0]);
  if (doc.errors.length > 0) return { models: [], problems };

  const root = doc.contents;
  if (!isMap(root)) {
    nodeAt(root, 'the catalog must be a mapping with a top-level "models" list');
    return { models: [], problems };
  }
  for (const pair of root.items) {
    const key = keyOf(pair);
    if (key !== 'models') nodeAt(pair.key as Node, unknownKeyMessage(key, ['models']));
  }
  const list = root.get('models', true);
  if (!isSeq(list)) {
    nodeAt(list ?? root, 'the catalog needs a top-level "models" list');
    return { models: [], problems };
  }

  const models: ModelEntry[] = [];
  const seen = new Map<string, number>();
  const spellings = new Map<string, ModelEntry>(); // image -> its first entry
  for (const item of list.items as Node[]) {
    const entry = readEntry(item, nodeAt);
    if (!entry) continue;
    // The Hub matches repository ids case-insensitively, and the image name is lower-cased: two
    // spellings are one repository and one image, but would be two site pages.
    const spelled = spellings.get(entry.image);
    if (spelled && spelled.name !== entry.name) {
      problems.push({ file, line: entry.line, column: entry.column, message: `"${entry.name}" is "${spelled.name}" (line ${spelled.line}) spelled differently: the Hub and the image name ignore case; spell it "${spelled.name}"` });
      continue;
    }
    spellings.set(entry.image, spelled ?? entry);
    const key = `${entry.image}:${entry.tag}`;
    const first = seen.get(key);
    if (first !== undefined) {
      problems.push({ file, line: entry.line, column: entry.column, message: `"${entry.name}" with tag "${entry.tag}" is already listed at line ${first}` });
      continue;
    }
    seen.set(key, entry.line);
    models.push(entry);
  }
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  return { models: problems.length > 0 ? [] : models, problems };

  function readEntry(item: Node, report: typeof nodeAt): ModelEntry | undefined {
    if (!isMap(item)) {
      report(item, 'each model must be a mapping with "name", "sha" and "tag"');
      return undefined;
    }
    const values: Partial<Record<(typeof ENTRY_KEYS)[number], string>> = {};
    let ok = true;
    const present = new Set<string>();
    for (const pair of item.items) {
      const key = keyOf(pair);
      present.add(key);
      if (!(ENTRY_KEYS as readonly string[]).includes(key)) {
        report(pair.key as Node, unknownKeyMessage(key, ENTRY_KEYS));
        ok = false;
        continue;
      }
      const value = pair.value as Node | null;
      if (!isScalar(value) || (typeof value.value !== 'string' && typeof value.value !== 'number')) {
        report(value ?? (pair.key as Node), `"${key}" must be a string`);
        ok = false;
        continue;
      }
      const text = String(value.value);
      const written = typeof value.value === 'number' ? source.slice(value.range![0], value.range![1]) : text;
      if (written !== text) {
        // YAML read a number and lost how it was written (1.10 -> 1.1, 010 -> 10, 1e3 -> 1000).
        report(value, `${key} ${written} is read by YAML as the number ${text}; quote it: ${key}: "${written}"`);
        ok = false;
        continue;
      }
      const problem = key === 'name' ? nameProblem(text) : key === 'sha' ? shaProblem(text) : tagProblem(text);
      if (problem) {
        report(value, problem);
        ok = false;
      }
      values[key as (typeof ENTRY_KEYS)[number]] = text;
    }
    for (const required of ['name', 'sha'] as const) {
      if (!present.has(required)) {
        report(item, `model is missing "${required}"`);
        ok = false;
      }
    }
    if (!ok) return undefined;
    const { line, col } = lineCounter.linePos(item.range?.[0] ?? 0);
    const name = values.name!;
    return { name, sha: values.sha!, tag: values.tag ?? DEFAULT_TAG, image: imageName(name), line, column: col };
  }
}

function keyOf(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const guess = known.find((k) => editDistance(k, key.toLowerCase()) <= 2);
  const hint = guess ? `did you mean "${guess}"?` : `allowed keys: ${known.map((k) => `"${k}"`).join(', ')}`;
  return `unknown key "${key}": ${hint}`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** Read and validate a catalog file; throws CatalogError listing every problem. */
export async function loadCatalog(file = DEFAULT_CATALOG): Promise<ModelEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CatalogError([{ file, line: 1, column: 1, message: `cannot read the catalog: ${(error as NodeJS.ErrnoException).code ?? error}` }]);
  }
  const { models, problems } = parseCatalog(text, file);
  if (problems.length > 0) throw new CatalogError(problems);
  return models;
}
