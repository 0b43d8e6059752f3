// Which built pages the sitemap lists: not those that ask search engines to keep away.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const NOINDEX = /<meta name="robots" content="noindex"/;

/**
 * A filter for @astrojs/sitemap (which calls it once the pages are written): false for a page
 * whose built HTML (`<outDir>/<path>.html`, `index.html` for `/`; Astro's `build.format: 'file'`)
 * carries `<meta name="robots" content="noindex">` (Base.astro's `noindex`). `page` is an absolute URL.
 */
export function indexedPages(outDir: string): (page: string) => boolean {
  return (page) => {
    const pathname = decodeURIComponent(new URL(page).pathname).replace(/\/$/, '');
    const file = path.join(outDir, `${pathname || '/index'}.html`);
    try {
      return !NOINDEX.test(readFileSync(file, 'utf8'));
    } catch {
      return true;
    }
  };
}
