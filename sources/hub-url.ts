// The one place a Hub file URL is made: /{repo}/resolve/{revision}/{path}, each path segment
// percent-encoded (names with spaces, '#', '?' or non-ASCII letters stay one path).

/** `{hubUrl}/{repo}/resolve/{revision}/{path}` with every '/'-separated segment of `path` (and `revision`) URI-encoded. */
export function hubResolveUrl(hubUrl: string, repo: string, revision: string, path: string): string {
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  return `${hubUrl.replace(/\/+$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${encoded}`;
}
