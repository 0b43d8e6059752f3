// Text quoted from a registry or a signed statement, made safe to print on a terminal or a CI log:
// control characters can neither start a new line (a forged `::warning` workflow command, a fake
// table row) nor move the cursor or recolour (ANSI escapes).

/** C0 (newlines included), DEL, C1, and the Unicode line and paragraph separators. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** `text` with each control character written as a visible escape: `\n`, `\x1b`, `\u2028`. */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
}
