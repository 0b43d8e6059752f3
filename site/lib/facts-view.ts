// How the site words model facts: compact counts, parameter counts, and the image's license file.
import type { SizedFile } from './file-sets.ts';

/** `1234` -> `1.2K`, `5600000` -> `5.6M` (downloads, likes). */
export function formatCount(n: number): string {
  for (const [size, unit] of [[1e9, 'B'], [1e6, 'M'], [1e3, 'K']] as const) {
    if (n >= size) return `${(n / size).toFixed(n >= size * 10 ? 0 : 1).replace(/\.0$/, '')}${unit}`;
  }
  return String(n);
}

/** `124439808` -> `124M parameters`. */
export function formatParameters(n: number): string {
  return `${formatCount(n)} parameters`;
}

/** The license file at the root of the image (LICENSE, LICENSE.md, license.txt, ...), if any. */
export function licenseFile(files: SizedFile[]): string | undefined {
  return files.map((f) => f.path).filter((p) => /^(license|licence|copying)(\.(md|txt|rst))?$/i.test(p)).sort()[0];
}

/**
 * Where the facts were fetched for another revision than the catalog pins (40-hex shas):
 * `as of revision abc1234…; the catalog pins def5678…`. Undefined when they are the same.
 */
export function factsRevisionNote(factsSha: string, pinned: string): string | undefined {
  return factsSha === pinned ? undefined : `as of revision ${factsSha.slice(0, 7)}…; the catalog pins ${pinned.slice(0, 7)}…`;
}
