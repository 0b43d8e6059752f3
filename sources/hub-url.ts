// The Hub's download URL for one file at one revision, with every path segment percent-encoded:
// a file path is data, and `?`, `#`, `%` (real repositories have folders like `C1_or_C2?_premise`)
// must not become a query, a fragment or an escape.
import { SourceError } from './folder.ts';

/**
 * `{hubUrl}/{repo}/resolve/{revision}/{path}` (huggingface_hub's `hf_hub_url` shape, models only).
 * `repo` is `owner/name` or a bare legacy name; `path` is the '/'-separated path the Hub listed.
 * Each segment of repo, revision and path is encoded with encodeURIComponent (RFC 3986 §3.3:
 * only unreserved characters and sub-delims stay literal). Throws SourceError for an empty, `.`
 * or `..` path segment: a URL parser would collapse it and fetch a different file.
 */
export function hubResolveUrl(hubUrl: string, repo: string, revision: string, path: string): string {
  const segments = path.split('/');
  const bad = segments.find((s) => s === '' || s === '.' || s === '..');
  if (bad !== undefined) throw new SourceError(`${repo}: the Hub listed "${path}", whose segment "${bad}" cannot be part of a file path`);
  const encode = (value: string) => value.split('/').map(encodeURIComponent).join('/');
  return `${hubUrl.replace(/\/+$/, '')}/${encode(repo)}/resolve/${encodeURIComponent(revision)}/${encode(path)}`;
}
