// Which files a layer lists before its eStargz prefetch landmark (`build --prefetch`). The stargz
// snapshotter fetches the layer up to the landmark when it mounts it, so a build step's first
// reads of those files need no request; estargz.Build's WithPrioritizedFiles does the same.
import type { SourceFile } from '../image/source.ts';

/** `--prefetch small`: the files a program reads first (configs, tokenizers, vocabularies). */
const SMALL_PRESET = 'small';
const SMALL_PATTERNS = ['*.json', '*.txt', '*.model', 'config*', 'tokenizer*'];
/** Larger files are left out of `small` (a 30 MB tokenizer.json would delay every mount). */
const SMALL_MAX_BYTES = 16 * 1024 * 1024;

export type PrefetchRule = (file: SourceFile) => boolean;

/**
 * The rule for `--prefetch` values: `small` (SMALL_PATTERNS, each file at most SMALL_MAX_BYTES)
 * or glob patterns, any matching. A pattern without `/` matches a file's base name in any folder;
 * with one, its path from the root (a leading `/` is ignored). `*` and `?` stay within a path
 * segment, `**` crosses them. Throws Error (one line) for an empty pattern.
 */
export function prefetchRule(values: string[]): PrefetchRule {
  const rules = values.map((value): PrefetchRule => {
    if (value === SMALL_PRESET) {
      const small = SMALL_PATTERNS.map(globMatcher);
      return (file) => file.size <= SMALL_MAX_BYTES && small.some((match) => match(file.path));
    }
    if (value.replace(/^\/+/, '') === '') throw new Error(`--prefetch takes "small" or a file pattern such as "*.json", not "${value}"`);
    const match = globMatcher(value);
    return (file) => match(file.path);
  });
  return (file) => rules.some((rule) => rule(file));
}

// A glob token as a regular expression: "**/" any folders, "**" anything, "*" and "?" within a segment.
function globToken(part: string): string {
  if (part === '**/') return '(?:.*/)?';
  if (part === '**') return '.*';
  if (part === '*') return '[^/]*';
  if (part === '?') return '[^/]';
  return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function globMatcher(pattern: string): (path: string) => boolean {
  const body = pattern.replace(/^\/+/, '').split(/(\*\*\/?|\*|\?)/).map(globToken).join('');
  const regex = new RegExp(pattern.includes('/') ? `^${body}$` : `(?:^|/)${body}$`);
  return (path) => regex.test(path);
}
