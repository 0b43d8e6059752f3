// Syntax highlighting with shiki. Creating a highlighter is slow, so there is exactly one per build.
import { createHighlighter, type Highlighter } from 'shiki';

export const CODE_THEME = 'github-dark-default';

let highlighter: Promise<Highlighter> | undefined;

export async function highlight(code: string, lang: 'dockerfile' | 'yaml' | 'shellscript'): Promise<string> {
  highlighter ??= createHighlighter({ themes: [CODE_THEME], langs: ['dockerfile', 'yaml', 'shellscript'] });
  return (await highlighter).codeToHtml(code, { lang, theme: CODE_THEME });
}
