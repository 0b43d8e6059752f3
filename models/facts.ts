// Model facts: what the Hugging Face Hub says about each catalog model (task, library, license,
// gated, parameter count, downloads, likes, files and bytes at the pinned sha), written by
// `models update` and `models verify` into a committed JSON file beside the catalog
// (models/facts.json), so the site builds offline. Nothing here is guessed: a field the Hub does
// not state is absent, and a model never fetched has no entry.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface ModelFacts {
  /** The sha the file counts refer to (the catalog's sha when they were fetched). */
  sha: string;
  /** The Hub's pipeline_tag (`text-generation`). */
  task?: string;
  /** The Hub's library_name (`transformers`, `diffusers`). */
  library?: string;
  /** The model card's license id (`apache-2.0`), or the Hub's `license:` tag. */
  license?: string;
  gated: boolean;
  /** Total parameters from the Hub's safetensors metadata. */
  parameters?: number;
  /** Downloads in the Hub's last 30 days, when fetched. */
  downloads: number;
  likes: number;
  /** Files and bytes at `sha`, as the image holds them (no .gitattributes). */
  files?: number;
  bytes?: number;
}

export interface FactsFile {
  /** When the facts were last fetched (ISO 8601). */
  updated: string;
  /** Facts per Hugging Face name, as the catalog writes it. */
  models: Record<string, ModelFacts>;
}

export class FactsError extends Error {}

/** The facts file beside a catalog: `models/models.yaml` -> `models/facts.json`. */
export function factsFileFor(catalog: string): string {
  return path.join(path.dirname(catalog), 'facts.json');
}

type Check = (value: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string' && v.length > 0 && v.length <= 200;
const isCount: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const FIELDS: Record<keyof ModelFacts, { check: Check; required?: true; expected: string }> = {
  sha: { check: (v) => typeof v === 'string' && /^[0-9a-f]{40}$/.test(v), required: true, expected: 'a 40-hex-digit sha' },
  task: { check: isString, expected: 'a string' },
  library: { check: isString, expected: 'a string' },
  license: { check: isString, expected: 'a string' },
  gated: { check: (v) => typeof v === 'boolean', required: true, expected: 'true or false' },
  parameters: { check: isCount, expected: 'a whole number >= 0' },
  downloads: { check: isCount, required: true, expected: 'a whole number >= 0' },
  likes: { check: isCount, required: true, expected: 'a whole number >= 0' },
  files: { check: isCount, expected: 'a whole number >= 0' },
  bytes: { check: isCount, expected: 'a whole number >= 0' },
};

/** Check parsed JSON against the schema above; throws one FactsError line naming the file and field. */
export function validateFacts(value: unknown, file: string): FactsFile {
  const fail = (where: string, message: string): never => {
    throw new FactsError(`${file}: ${where}: ${message} (regenerate it with: depot-ai models update)`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('top level', 'expected an object with "updated" and "models"');
  const { updated, models, ...rest } = value as Record<string, unknown>;
  for (const key of Object.keys(rest)) fail(key, 'unknown key');
  if (typeof updated !== 'string' || Number.isNaN(Date.parse(updated))) fail('updated', 'expected an ISO 8601 date');
  if (typeof models !== 'object' || models === null || Array.isArray(models)) fail('models', 'expected an object keyed by model name');
  for (const [name, facts] of Object.entries(models as Record<string, unknown>)) {
    const where = `models[${JSON.stringify(name)}]`;
    if (typeof facts !== 'object' || facts === null || Array.isArray(facts)) fail(where, 'expected an object');
    for (const [key, field] of Object.entries(facts as Record<string, unknown>)) {
      const rule = FIELDS[key as keyof ModelFacts];
      if (!rule) fail(`${where}.${key}`, 'unknown key');
      else if (!rule.check(field)) fail(`${where}.${key}`, `expected ${rule.expected}, got ${JSON.stringify(field)}`);
    }
    for (const [key, rule] of Object.entries(FIELDS)) if (rule.required && !(key in (facts as object))) fail(`${where}.${key}`, 'missing');
  }
  return value as FactsFile;
}

/** The facts beside `catalog`; an empty set when the file does not exist yet. */
export async function loadFacts(file: string): Promise<FactsFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { updated: new Date(0).toISOString(), models: {} };
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new FactsError(`${file}: not JSON: ${(error as Error).message} (regenerate it with: depot-ai models update)`);
  }
  return validateFacts(parsed, file);
}

/** The file's text: models sorted by name, fields in schema order, so diffs stay small. */
export function serializeFacts(facts: FactsFile): string {
  const models: Record<string, ModelFacts> = {};
  for (const name of Object.keys(facts.models).sort()) {
    const entry = facts.models[name] as unknown as Record<string, unknown>;
    models[name] = Object.fromEntries(Object.keys(FIELDS).filter((k) => entry[k] !== undefined).map((k) => [k, entry[k]])) as unknown as ModelFacts;
  }
  return JSON.stringify({ updated: facts.updated, models }, null, 2) + '\n';
}
