// A stand-in for the Hugging Face Hub on 127.0.0.1, speaking the endpoints @huggingface/hub
// uses, so tests drive the real client (pass `hubUrl: hub.url`, or set HF_ENDPOINT=hub.url):
//
//   GET /api/models?sort=downloads&limit=N&search=&author=   model list, paginated (Link: rel="next")
//   GET /api/models/{repo}                                     model info at main (sha, private, gated, siblings,
//                                                              pipeline_tag, library_name, cardData.license, safetensors.total)
//   GET /api/models/{repo}/revision/{rev}                      model info at a branch, "HEAD" or a sha
//   GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=true  file list, paginated (Link: rel="next")
//   GET|HEAD /{repo}/resolve/{rev}/{path}                      small files served here (Range supported);
//                                                              LFS files: 302 to the storage origin
//   GET|HEAD {storageUrl}/lfs/{repo id}/{sha256}               the storage host (Range supported, no auth)
//
// Repositories are in memory and mutable (`hub.setRepo`, `hub.commit`). Private and gated
// repositories need `Authorization: Bearer <token>`; every request is recorded in
// `hub.requests` (which origin, whether it carried an Authorization header) for counting, and
// `hub.faults` injects failures (a status, or a connection cut after some bytes).
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface HubCommit {
  /** 40 hex digits; defaults to a hash of the files. */
  sha?: string;
  files: Record<string, string | Buffer | GeneratedFile>;
}

/**
 * A file made on demand, for models bigger than memory (always stored with LFS): `read(start,
 * end)` gives bytes [start, end), the same every time; `sha256` is their hash (generatedFile()).
 */
export interface GeneratedFile {
  size: number;
  sha256: string;
  read(start: number, end: number): Buffer;
}

/** A GeneratedFile of `size` bytes from `read`, hashed once here (one pass, 1 MiB at a time). */
export function generatedFile(size: number, read: (start: number, end: number) => Buffer): GeneratedFile {
  const hash = createHash('sha256');
  for (let start = 0; start < size; start += 1 << 20) hash.update(read(start, Math.min(size, start + (1 << 20))));
  return { size, sha256: hash.digest('hex'), read };
}

export interface HubRepoSpec {
  /** `owner/name` or a bare legacy name, as written on the Hub. */
  name: string;
  /** Commits, oldest first; the last one is `main`. */
  commits: HubCommit[];
  private?: boolean;
  gated?: false | 'auto' | 'manual';
  downloads?: number;
  likes?: number;
  pipelineTag?: string;
  /** library_name, the model card's license, and the safetensors metadata's parameter total. */
  libraryName?: string;
  license?: string;
  parameters?: number;
  /** Which files are stored with LFS (default: 100 KiB and larger, or *.safetensors / *.bin). */
  lfs?: (path: string, size: number) => boolean;
  /** Bytes the storage host serves instead of a file's real content (the listing keeps the real hash). */
  tamper?: Record<string, Buffer>;
}

export interface HubRequest {
  origin: 'hub' | 'storage';
  method: string;
  /** Path and query as received. */
  url: string;
  range?: string;
  authorization?: string;
}

export interface HubFault {
  /** Applies to requests whose URL contains this text... */
  match: string;
  /** ...and, when given, that pass this test (e.g. `(r) => !r.range` for full downloads only). */
  when?: (request: HubRequest) => boolean;
  /** How many more times to fail (default 1). */
  times?: number;
  /** Answer with this status... */
  status?: number;
  /** ...or send this many body bytes, then cut the connection... */
  cutAfter?: number;
  /** ...once this settles (default: a moment after the bytes are written). */
  cutWhen?: () => Promise<unknown>;
}

export interface HubServer {
  /** The Hub origin, e.g. http://127.0.0.1:PORT (the `hubUrl` / HF_ENDPOINT). */
  url: string;
  /** The storage origin LFS downloads are redirected to. */
  storageUrl: string;
  /** The token private and gated repositories accept. */
  token: string;
  requests: HubRequest[];
  faults: HubFault[];
  /** Entries per page of tree and model listings. */
  pageSize: number;
  /** When set, each storage connection serving a generated file sends at most this many bytes per second. */
  bytesPerSecond?: number;
  setRepo(spec: HubRepoSpec): void;
  /** Add a commit on top of main; returns its sha. */
  commit(name: string, files: HubCommit['files'], sha?: string): string;
  /** The sha main points at. */
  head(name: string): string;
  /** Every commit sha, oldest first. */
  shas(name: string): string[];
  /** Requests matching a predicate (all when omitted). */
  count(predicate?: (r: HubRequest) => boolean): number;
  close(): Promise<void>;
}

interface StoredFile {
  size: number;
  content: Buffer;
  served: Buffer | GeneratedFile;
  gitOid: string;
  sha256?: string;
}

interface StoredRepo {
  spec: HubRepoSpec;
  commits: { sha: string; files: Map<string, StoredFile>; date: Date }[];
}

const LFS_POINTER_SIZE = 134;
const defaultLfs = (path: string, size: number) => size >= 100 * 1024 || /\.(safetensors|bin)$/.test(path);

const repoId = (name: string) => createHash('md5').update(name).digest('hex').slice(0, 24);
export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** The git blob id of a file (what the Hub reports as `oid` for files not in LFS). */
export const gitBlobOid = (bytes: Buffer) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');

export async function startHubServer(options: { repos?: HubRepoSpec[]; token?: string; pageSize?: number } = {}): Promise<HubServer> {
  const repos = new Map<string, StoredRepo>();
  const blobs = new Map<string, Buffer | GeneratedFile>();
  let clock = Date.UTC(2024, 0, 1);

  const store = (repo: StoredRepo, commit: HubCommit): string => {
    const lfs = repo.spec.lfs ?? defaultLfs;
    const files = new Map<string, StoredFile>();
    for (const [path, value] of Object.entries(commit.files)) {
      if (typeof value === 'object' && !Buffer.isBuffer(value)) {
        // Only the LFS pointer is in git: its id stands for the file in listings.
        const file: StoredFile = { size: value.size, content: Buffer.alloc(0), served: value, gitOid: createHash('sha1').update(value.sha256).digest('hex'), sha256: value.sha256 };
        blobs.set(`${repoId(repo.spec.name)}/${value.sha256}`, value);
        files.set(path, file);
        continue;
      }
      const content = Buffer.isBuffer(value) ? value : Buffer.from(value);
      const served = repo.spec.tamper?.[path] ?? content;
      const file: StoredFile = { size: content.length, content, served, gitOid: gitBlobOid(content) };
      if (lfs(path, content.length)) {
        file.sha256 = sha256(content);
        blobs.set(`${repoId(repo.spec.name)}/${file.sha256}`, served);
      }
      files.set(path, file);
    }
    const listing = [...files].map(([p, f]) => `${p}:${f.gitOid}`).sort().join('\n');
    const sha = commit.sha ?? createHash('sha1').update(`${repo.commits.at(-1)?.sha ?? ''}\n${listing}`).digest('hex');
    repo.commits.push({ sha, files, date: new Date((clock += 3600_000)) });
    return sha;
  };

  const hub: HubServer = {
    url: '',
    storageUrl: '',
    token: options.token ?? 'hf_test_token',
    requests: [],
    faults: [],
    pageSize: options.pageSize ?? 3,
    setRepo(spec) {
      const repo: StoredRepo = { spec, commits: [] };
      repos.set(spec.name, repo);
      for (const commit of spec.commits) store(repo, commit);
    },
    commit(name, files, sha) {
      const repo = repos.get(name);
      if (!repo) throw new Error(`no repo ${name}`);
      return store(repo, { files, sha });
    },
    head(name) {
      return repos.get(name)!.commits.at(-1)!.sha;
    },
    shas(name) {
      return repos.get(name)!.commits.map((c) => c.sha);
    },
    count(predicate) {
      return predicate ? hub.requests.filter(predicate).length : hub.requests.length;
    },
    close: async () => {},
  };
  for (const spec of options.repos ?? []) hub.setRepo(spec);

  const findRepo = (name: string) => repos.get(name) ?? [...repos.values()].find((r) => r.spec.name.toLowerCase() === name.toLowerCase());
  const findCommit = (repo: StoredRepo, rev: string) =>
    rev === 'main' || rev === 'HEAD' ? repo.commits.at(-1) : repo.commits.find((c) => c.sha === rev);

  /** Whether the request may see the repository; answers the error itself when not. */
  const allowed = (req: IncomingMessage, res: ServerResponse, repo: StoredRepo | undefined): repo is StoredRepo => {
    const auth = req.headers.authorization;
    if (auth && auth !== `Bearer ${hub.token}`) {
      sendError(res, 401, 'Invalid credentials in Authorization header');
      return false;
    }
    if (!repo || (repo.spec.private && !auth)) {
      sendError(res, repo ? 401 : 404, 'Repository not found', 'RepoNotFound');
      return false;
    }
    if (repo.spec.gated && !auth) {
      sendError(res, 401, `Access to model ${repo.spec.name} is restricted. You must have access to it and be authenticated to access it.`, 'GatedRepo');
      return false;
    }
    return true;
  };

  const info = (repo: StoredRepo, commit: StoredRepo['commits'][number]) => ({
    _id: repoId(repo.spec.name),
    id: repo.spec.name,
    modelId: repo.spec.name,
    sha: commit.sha,
    private: repo.spec.private ?? false,
    gated: repo.spec.gated ?? false,
    disabled: false,
    downloads: repo.spec.downloads ?? 0,
    likes: repo.spec.likes ?? 0,
    pipeline_tag: repo.spec.pipelineTag,
    library_name: repo.spec.libraryName,
    tags: repo.spec.license ? [`license:${repo.spec.license}`] : [],
    cardData: repo.spec.license ? { license: repo.spec.license } : undefined,
    safetensors: repo.spec.parameters === undefined ? undefined : { total: repo.spec.parameters },
    lastModified: commit.date.toISOString(),
    createdAt: repo.commits[0].date.toISOString(),
    siblings: [...commit.files.keys()].sort().map((rfilename) => ({ rfilename })),
  });

  /** One page of `items`, with a Link header to the next one (cursor = offset). */
  const page = <T>(req: IncomingMessage, res: ServerResponse, base: string, items: T[], size: number) => {
    const url = new URL(req.url!, base);
    const start = Number(url.searchParams.get('cursor') ?? 0);
    const slice = items.slice(start, start + size);
    if (start + size < items.length) {
      url.searchParams.set('cursor', String(start + size));
      res.setHeader('Link', `<${url.href}>; rel="next"`);
    }
    sendJson(res, slice);
  };

  const tree = (commit: StoredRepo['commits'][number], prefix: string, recursive: boolean) => {
    const entries: object[] = [];
    const dirs = new Set<string>();
    const under = prefix ? `${prefix}/` : '';
    for (const [path, file] of [...commit.files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (!path.startsWith(under)) continue;
      const rest = path.slice(under.length).split('/');
      const depth = recursive ? rest.length - 1 : Math.min(rest.length - 1, 1);
      for (let i = 1; i <= depth; i++) {
        const dir = under + rest.slice(0, i).join('/');
        if (!dirs.has(dir)) {
          dirs.add(dir);
          entries.push({ type: 'directory', oid: createHash('sha1').update(dir).digest('hex'), size: 0, path: dir });
        }
      }
      if (!recursive && rest.length > 1) continue;
      const entry: Record<string, unknown> = { type: 'file', oid: file.gitOid, size: file.size, path };
      if (file.sha256) {
        entry.oid = gitBlobOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${file.sha256}\nsize ${file.size}\n`));
        entry.size = file.size;
        entry.lfs = { oid: file.sha256, size: file.size, pointerSize: LFS_POINTER_SIZE };
      }
      entries.push(entry);
    }
    return entries;
  };

  const handleHub = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url!, hub.url);
    // Like the Hub: `?` and `#` end the path; each segment's %XX escapes are decoded (a malformed
    // escape is a 400), so a file name holding `?`, `#`, `%` or `/`-free unicode must come encoded.
    let path: string;
    try {
      path = url.pathname.split('/').map(decodeURIComponent).join('/');
    } catch {
      return sendError(res, 400, `Invalid URL escape in ${url.pathname}`);
    }
    if (path === '/api/models') {
      const search = url.searchParams.get('search')?.toLowerCase();
      const author = url.searchParams.get('author');
      const sort = url.searchParams.get('sort');
      let list = [...repos.values()].filter(
        (r) => (!r.spec.private || req.headers.authorization === `Bearer ${hub.token}`) && (!search || r.spec.name.toLowerCase().includes(search)) && (!author || r.spec.name.startsWith(`${author}/`)),
      );
      if (sort === 'downloads' || sort === 'likes') list = list.sort((a, b) => (b.spec[sort] ?? 0) - (a.spec[sort] ?? 0));
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 1000) || 1000, hub.pageSize);
      return page(req, res, hub.url, list.map((r) => info(r, r.commits.at(-1)!)), limit);
    }
    let match = /^\/api\/models\/((?:[^/]+\/)?[^/]+?)(?:\/(tree|revision)\/([^/]+)(?:\/(.*))?)?$/.exec(path);
    if (match) {
      const [, name, kind, rev = 'main', sub = ''] = match;
      const repo = findRepo(name);
      if (!allowed(req, res, repo)) return;
      const commit = findCommit(repo, rev);
      if (!commit) return sendError(res, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
      if (kind === 'tree') return page(req, res, hub.url, tree(commit, sub, url.searchParams.get('recursive') === 'true'), hub.pageSize);
      return sendJson(res, info(repo, commit));
    }
    match = /^\/((?:[^/]+\/)?[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (match) {
      const [, name, rev, filePath] = match;
      const repo = findRepo(name);
      if (!allowed(req, res, repo)) return;
      const commit = findCommit(repo, rev);
      if (!commit) return sendError(res, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
      const file = commit.files.get(filePath);
      if (!file) return sendError(res, 404, 'Entry not found', 'EntryNotFound');
      res.setHeader('X-Repo-Commit', commit.sha);
      if (file.sha256) {
        res.writeHead(302, {
          Location: `${hub.storageUrl}/lfs/${repoId(repo.spec.name)}/${file.sha256}?signature=${createHash('md5').update(file.sha256).digest('hex')}`,
          'X-Linked-Size': String(file.size),
          'X-Linked-ETag': `"${file.sha256}"`,
          'Content-Length': '0',
        });
        return res.end();
      }
      return sendBytes(req, res, file.served as Buffer, `"${file.gitOid}"`);
    }
    sendError(res, 404, 'Not found');
  };

  const handleStorage = (req: IncomingMessage, res: ServerResponse) => {
    const match = /^\/lfs\/([0-9a-f]+)\/([0-9a-f]{64})$/.exec(new URL(req.url!, hub.storageUrl).pathname);
    const bytes = match && blobs.get(`${match[1]}/${match[2]}`);
    if (!bytes) return sendError(res, 404, 'NoSuchKey');
    if (Buffer.isBuffer(bytes)) return sendBytes(req, res, bytes, `"${match[2]}"`);
    sendGenerated(req, res, bytes, `"${match[2]}"`, hub.bytesPerSecond);
  };

  const serve = (origin: HubRequest['origin'], handler: typeof handleHub): Server =>
    createServer((req, res) => {
      const record: HubRequest = { origin, method: req.method!, url: req.url!, range: req.headers.range, authorization: req.headers.authorization };
      hub.requests.push(record);
      const fault = hub.faults.find((f) => req.url!.includes(f.match) && (f.times ?? 1) > 0 && (f.when?.(record) ?? true));
      if (fault) {
        fault.times = (fault.times ?? 1) - 1;
        if (fault.status) return sendError(res, fault.status, 'injected fault');
        if (fault.cutAfter !== undefined) cutAfter(res, fault.cutAfter, fault.cutWhen);
      }
      try {
        handler(req, res);
      } catch (error) {
        sendError(res, 500, String(error));
      }
    });

  const hubServer = serve('hub', handleHub);
  const storageServer = serve('storage', handleStorage);
  const listen = (server: Server) =>
    new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`)));
  hub.url = await listen(hubServer);
  hub.storageUrl = await listen(storageServer);
  hub.close = async () => {
    for (const server of [hubServer, storageServer]) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  };
  return hub;
}

function sendJson(res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, message: string, code?: string): void {
  const body = JSON.stringify({ error: message });
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...(code ? { 'X-Error-Code': code } : {}) });
  res.end(body);
}

/** Whole or `Range: bytes=a-b` / `bytes=a-` bodies, as the Hub and S3 answer them. */
function sendBytes(req: IncomingMessage, res: ServerResponse, bytes: Buffer, etag: string): void {
  const headers: Record<string, string | number> = { ETag: etag, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  let body = bytes;
  let status = 200;
  if (range) {
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
    if (start >= bytes.length && bytes.length > 0) {
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
      return void res.end();
    }
    body = bytes.subarray(start, end + 1);
    status = 206;
    headers['Content-Range'] = `bytes ${start}-${Math.max(start, end)}/${bytes.length}`;
  }
  headers['Content-Length'] = body.length;
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** A generated file (or a `Range` of it) streamed 256 KiB at a time with backpressure, paced to `bytesPerSecond` when given. */
function sendGenerated(req: IncomingMessage, res: ServerResponse, file: GeneratedFile, etag: string, bytesPerSecond?: number): void {
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const start = range ? Number(range[1]) : 0;
  const end = range && range[2] ? Math.min(Number(range[2]) + 1, file.size) : file.size;
  if (start >= file.size && file.size > 0) {
    res.writeHead(416, { 'Content-Range': `bytes */${file.size}` });
    return void res.end();
  }
  res.writeHead(range ? 206 : 200, {
    ETag: etag,
    'Accept-Ranges': 'bytes',
    'Content-Type': 'application/octet-stream',
    'Content-Length': end - start,
    ...(range ? { 'Content-Range': `bytes ${start}-${end - 1}/${file.size}` } : {}),
  });
  if (req.method === 'HEAD') return void res.end();
  const began = Date.now();
  let offset = start;
  const pump = () => {
    while (offset < end && !res.destroyed) {
      if (bytesPerSecond) {
        const due = began + ((offset - start) / bytesPerSecond) * 1000;
        if (due > Date.now()) return void setTimeout(pump, due - Date.now());
      }
      const next = Math.min(end, offset + (256 << 10));
      const ok = res.write(file.read(offset, next));
      offset = next;
      if (!ok) return void res.once('drain', pump);
    }
    if (offset >= end) res.end();
  };
  res.on('close', () => (offset = end + 1));
  pump();
}

/**
 * Let `limit` body bytes through, then destroy the socket (a connection reset mid-transfer) once
 * `when` settles. By default the reset waits a moment so the client has taken in the bytes it was
 * sent, as over a real link; a test that needs certainty waits for the client to show it has them.
 */
const CUT_DELAY_MS = 200;

function cutAfter(res: ServerResponse, limit: number, when = () => new Promise((r) => setTimeout(r, CUT_DELAY_MS))): void {
  let sent = 0;
  const cut = () => void when().catch(() => {}).finally(() => res.destroy());
  const write = res.write.bind(res) as (chunk: Buffer, callback?: () => void) => boolean;
  const end = res.end.bind(res) as () => ServerResponse;
  const pass = (chunk?: Buffer | string): boolean => {
    if (chunk === undefined || sent >= limit) return false;
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    if (sent + bytes.length <= limit) {
      sent += bytes.length;
      return write(bytes);
    }
    write(bytes.subarray(0, limit - sent), cut);
    sent = limit;
    return false;
  };
  res.write = ((chunk: Buffer | string) => pass(chunk)) as typeof res.write;
  res.end = ((chunk?: Buffer | string) => {
    pass(chunk);
    if (sent < limit) return end();
    if (!res.destroyed) cut();
    return res;
  }) as typeof res.end;
}
