// Paths as Dockerfile COPY sources. A source is read twice: first as a shell word (the Dockerfile
// lexer, in both the plain and the JSON form, treats `\`, `$`, `'` and `"` specially), then as a
// pattern (the Dockerfile reference: Go's filepath.Match, where `*`, `?`, `[` and `\` are
// special). `weights[0].bin` written as is copies `weights0.bin`; every path the site shows goes
// through `copySource`, so it names exactly one file.

/** Go filepath.Match metacharacters, each made literal: a one-character class, or `\\`. */
const PATTERN: Record<string, string> = { '*': '[*]', '?': '[?]', '[': '[[]', '\\': '\\\\' };

/** What the Dockerfile lexer would expand or treat as quoting (the default escape character `\`). */
const LEXER = /[\\$'"]/g;

/**
 * A path inside an image (`weights[0].bin`, `/a b/c?.txt`) as a COPY source word that matches
 * exactly that path: `/weights[[]0].bin`. The result still needs the JSON form when it holds
 * whitespace (see `copyLine`).
 */
export function copySource(path: string): string {
  const absolute = '/' + path.replace(/^\/+/, '');
  const pattern = absolute.replace(/[*?[\\]/g, (c) => PATTERN[c]);
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
