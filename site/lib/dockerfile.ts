// Paths as Dockerfile COPY sources. A source is read twice: first as a shell word (the Dockerfile
// lexer, in both the plain and the JSON form, treats `\`, `$`, `'` and `"` specially), then as a
// pattern (the Dockerfile reference: Go's filepath.Match, where `*`, `?`, `[` and `\` are
// special). `weights[0].bin` written as is copies `weights0.bin`; every path the site shows goes
// through `copySource`, so it names exactly one file.
//
// What the builders do with the file they matched differs, found with the real ones (Debian's
// dockerd 20.10 with BuildKit and its classic builder, buildah 1.28):
// - BuildKit and the classic builder copy what the pattern matched: `a\\b` (lexed) names `a\b`;
//   a class `[\\]` does not (BuildKit: "syntax error in pattern", or another file).
// - buildah reads the path it matched as a pattern a second time: `a[*]b` matches `a*b`, then
//   copies `a*b` and `axb`; a matched `a\b` is read as `ab`. So a path whose own name, read as a
//   pattern, matches another path of the image (or is no pattern, or holds `\`) has no COPY
//   source in both: `unnamed` says why, and the site offers no line for it.
// - A control character (newline, tab...) cannot be written in a Dockerfile word; `?` in its
//   place works in all three when that pattern matches only that path of the image.

/** Go filepath.Match metacharacters, each made literal: a one-character class, or `\\`. */
const PATTERN: Record<string, string> = { '*': '[*]', '?': '[?]', '[': '[[]', '\\': '\\\\' };

/** What the Dockerfile lexer would expand or treat as quoting (the default escape character `\`). */
const LEXER = /[\\$'"]/g;

/** Characters a Dockerfile line cannot carry in a word (C0/C1 controls, DEL, line and paragraph separators): `?` stands for each. */
const CONTROL_CLASS = '[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]';
const CONTROL = new RegExp(CONTROL_CLASS, 'gu');
/** A name that is its own pattern: no metacharacter, no control character. */
const LITERAL = new RegExp(`^(?![^]*(?:[*?[\\\\]|${CONTROL_CLASS}))`, 'u');

/**
 * A path inside an image (`weights[0].bin`, `/a b/c?.txt`) as a COPY source word: its pattern
 * metacharacters made literal, each control character as `?` (check `unnamed` before offering
 * it), escaped for the lexer: `/weights[[]0].bin`. The result still needs the JSON form when it
 * holds whitespace (see `copyLine`).
 */
export function copySource(path: string): string {
  const absolute = '/' + path.replace(/^\/+/, '');
  const pattern = absolute.replace(/[*?[\\]/g, (c) => PATTERN[c]).replace(CONTROL, '?');
  return pattern.replace(LEXER, (c) => '\\' + c);
}

/**
 * `COPY --link --from=<ref> <sources...> <dest>` for image paths; the JSON form
 * (`COPY --link --from=<ref> ["/a b", "dest/"]`) when a word holds whitespace. With more than
 * one source, `dest` must end in `/` (the Dockerfile reference's rule).
 */
export function copyLine(ref: string, paths: string[], dest: string): string {
  const words = [...paths.map(copySource), dest.replace(LEXER, (c) => '\\' + c)];
  if (words.some((w) => /\s/.test(w))) return `COPY --link --from=${ref} [${words.map((w) => JSON.stringify(w)).join(', ')}]`;
  return `COPY --link --from=${ref} ${words.join(' ')}`;
}

/** An image's paths, files and the folders above them, without leading '/', for `unnamed`. */
export interface Listing {
  all: string[];
}

/** The listing of an image holding the files `paths` (relative, as in the eStargz TOC). */
export function listing(paths: string[]): Listing {
  const all = new Set<string>();
  for (const p of paths) {
    const parts = p.replace(/^\/+/, '').split('/');
    for (let i = 1; i <= parts.length; i++) all.add(parts.slice(0, i).join('/'));
  }
  return { all: [...all] };
}

/** A Go filepath.Match pattern (no `\` in it) as an anchored RegExp over whole paths, or undefined when Go calls it malformed (ErrBadPattern). */
function patternRegExp(pattern: string): RegExp | undefined {
  const chars = [...pattern];
  const quote = (c: string) => `\\u{${c.codePointAt(0)!.toString(16)}}`;
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c !== '[') out += /[\p{L}\p{N}_]/u.test(c) ? c : quote(c);
    else {
      let j = i + 1;
      const negated = chars[j] === '^';
      if (negated) j++;
      let body = '';
      for (let ranges = 0; ; ranges++) {
        if (chars[j] === ']' && ranges > 0) break;
        const lo = chars[j];
        if (lo === undefined || lo === '-' || lo === ']') return undefined;
        j++;
        let hi = lo;
        if (chars[j] === '-') {
          hi = chars[j + 1];
          if (hi === undefined || hi === '-' || hi === ']') return undefined;
          j += 2;
        }
        // A reversed range matches nothing, as in Go.
        if (hi.codePointAt(0)! >= lo.codePointAt(0)!) body += `${quote(lo)}-${quote(hi)}`;
      }
      out += body ? `(?!/)[${negated ? '^' : ''}${body}]` : negated ? '[^/]' : '(?!)';
      i = j;
    }
  }
  return new RegExp(`^${out}$`, 'u');
}

/** The paths of `list` that `pattern` matches, or undefined for a malformed pattern. */
function matched(pattern: string, list: Listing): string[] | undefined {
  const re = patternRegExp(pattern);
  return re && list.all.filter((p) => re.test(p));
}

/**
 * Why no COPY source names exactly `path` (a file or folder of the image, no leading '/') in
 * both buildah and BuildKit, or undefined when `copySource(path)` does. `list` is the image's
 * (see `listing`).
 */
export function unnamed(path: string, list: Listing): string | undefined {
  // The builder refuses such names now; an image built before may still hold them.
  if (path.split('/').some((part) => part.startsWith('.wh.'))) return 'a name starting with ".wh." is a whiteout in an OCI layer: builders delete a file for it instead of copying it';
  if (path.includes('\\')) return 'its name holds a backslash, which buildah reads as an escape in the path it matched, so no COPY source names exactly it';
  const name = path.replace(/^\/+/, '');
  if (LITERAL.test(name)) return undefined; // it matches only itself
  // buildah's second reading: the path itself as a pattern (`w[0].bin` matches `w0.bin`, not itself).
  const asPattern = matched(name, list);
  const reread = 'buildah reads the path it matched as a pattern';
  if (!asPattern) return `${reread}, and this name is not a valid one`;
  if (!asPattern.includes(name)) return `${reread}, and this name read so does not match itself`;
  const other = asPattern.find((p) => p !== name);
  if (other) return `${reread}, and this name read so also matches ${other}`;
  // The source word itself: only a control character's \`?\` can match more than the path.
  const bySource = matched(copySource(name).slice(1).replace(/\\(.)/gu, '$1'), list)?.find((p) => p !== name);
  if (bySource) return `a control character in its name needs \`?\` in the COPY source, which also matches ${bySource}`;
  return undefined;
}
