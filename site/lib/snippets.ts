// The Dockerfile lines and references the site shows and copies. One place, so the homepage,
// the model pages and the tests agree byte for byte.
import { copyLine, listing, unnamed } from './dockerfile.ts';

/** `depot.ai/<image>:<tag>` */
export function imageRef(host: string, image: string, tag: string): string {
  return `${host}/${image}:${tag}`;
}

/** `depot.ai/<image>@sha256:…` */
export function pinnedRef(host: string, image: string, digest: string): string {
  return `${host}/${image}@${digest}`;
}

/** `COPY --link --from=<ref> / .` — the whole repository. */
export function copyAll(ref: string): string {
  return `COPY --link --from=${ref} / .`;
}

/** `COPY --link --from=<ref> /<path> .` — one file, escaped so it names only that file (see dockerfile.ts). */
export function copyFile(ref: string, path: string): string {
  return copyLine(ref, [path], '.');
}

/**
 * `COPY --link --from=<ref> /<folder> ./<folder>/` — a folder's contents into `dest` (by default
 * the same folder under the build's working directory). The source never ends in `/`: Docker's
 * classic builder finds no file for a pattern source ending in `/` (`/q[?]dir/`: "no source files
 * were specified"); without it all three builders copy the folder's contents alike.
 */
export function copyFolder(ref: string, folder: string, dest?: string): string {
  const name = folder.replace(/\/+$/, '');
  return copyLine(ref, [name], dest ?? `./${name}/`);
}

/**
 * The file a one-file COPY example names, among an image's `files` (paths without '/', sizes in
 * bytes): `preferred` when the image holds it and a line names it exactly (dockerfile.ts
 * `unnamed`), else the largest file a line names exactly; undefined when no line names any.
 */
export function exampleFile(files: { path: string; size: number }[], preferred?: string): string | undefined {
  const list = listing(files.map((f) => f.path));
  const named = (path: string) => !unnamed(path, list);
  if (preferred !== undefined && files.some((f) => f.path === preferred) && named(preferred)) return preferred;
  return [...files].sort((a, b) => b.size - a.size).find((f) => named(f.path))?.path;
}

/** The Hugging Face tree of a model at its pinned revision. */
export function sourceUrl(name: string, sha: string): string {
  return `https://huggingface.co/${name}/tree/${sha}`;
}

/** The site path of a model's page: its Hugging Face name as written. */
export function modelPath(name: string): string {
  return `/${name}`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Human-readable size in powers of 1024, like the CLI (`1.2 GiB`). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}
