// The catalog commands that ask Hugging Face (models update / top / verify / changed), run as the
// real CLI against the local Hub stand-in: edits keep the file as written, problems are one
// FILE:LINE:COL line each with a non-zero exit, rate limits and network errors are retried.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseCatalog } from '../models/catalog.ts';
import { depotAiAsync } from './helpers/cli.ts';
import { startHubServer, type HubServer } from './helpers/hub-server.ts';
import { tempDir } from './helpers/models.ts';

const OLD = '0123456789abcdef0123456789abcdef01234567';
const files = (seed: string) => ({ '.gitattributes': '*.safetensors filter=lfs\n', 'config.json': `{"seed":"${seed}"}`, 'model.safetensors': Buffer.alloc(2048, seed) });

let hub: HubServer;
let env: NodeJS.ProcessEnv;

before(async () => {
  hub = await startHubServer({
    pageSize: 3,
    repos: [
      { name: 'gpt2', downloads: 900, commits: [{ sha: OLD, files: files('a') }, { files: files('b') }] },
      { name: 'Org/Model-A', downloads: 50, commits: [{ files: files('c') }, { files: files('d') }] },
      { name: 'org/current', downloads: 10, commits: [{ files: files('e') }] },
      { name: 'meta/Gated-LLM', downloads: 800, gated: 'manual', commits: [{ files: files('f') }] },
      { name: 'x/private', downloads: 700, private: true, commits: [{ files: files('g') }] },
      { name: 'Popular/First-Model', downloads: 600, commits: [{ files: files('h') }] },
      { name: 'popular/second', downloads: 500, commits: [{ files: files('i') }] },
      { name: 'popular/third', downloads: 400, commits: [{ files: files('j') }] },
      { name: 'popular/fourth', downloads: 300, commits: [{ files: files('k') }] },
    ],
  });
  env = { HF_ENDPOINT: hub.url, HF_TOKEN: '', DEPOT_HUB_RETRIES: '2', DEPOT_HUB_BACKOFF_MS: '1' };
});

after(() => hub.close());

async function catalogFile(text: string): Promise<string> {
  const file = path.join(tempDir('depot-catalog-'), 'models.yaml');
  await writeFile(file, text);
  return file;
}

describe('depot-ai models update', () => {
  test('changes only the shas: comments, quoting, blank lines and order stay', async () => {
    const modelA = hub.head('Org/Model-A');
    const text = [
      '# The depot.ai catalog.',
      'models:',
      '  # a legacy name',
      '  - name: gpt2',
      `    sha: "${OLD}"   # quoted on purpose`,
      '',
      '  -   name: Org/Model-A',
      `      sha: ${OLD}`,
      '      tag: latest',
      `  - { name: org/current, sha: ${hub.head('org/current')} }`,
      '# the end',
      '',
    ].join('\n');
    const file = await catalogFile(text);
    const run = await depotAiAsync(['models', 'update', file], env);
    assert.equal(run.stderr, '');
    assert.equal(run.status, 0);
    const expected = text.replace(`"${OLD}"`, `"${hub.head('gpt2')}"`).replace(`sha: ${OLD}`, `sha: ${modelA}`);
    assert.equal(await readFile(file, 'utf8'), expected);
    assert.match(run.stdout, new RegExp(`^gpt2: ${OLD.slice(0, 12)} -> ${hub.head('gpt2').slice(0, 12)}$`, 'm'));
    assert.match(run.stdout, /: 2 of 3 shas updated$/m);

    const again = await depotAiAsync(['models', 'update', file], env);
    assert.equal(again.status, 0);
    assert.match(again.stdout, /: 0 of 3 shas updated$/m);
    assert.equal(await readFile(file, 'utf8'), expected);
  });

  test('a repository that is gone or gated is a FILE:LINE:COL line; the others are still updated', async () => {
    const text = `models:\n  - name: gpt2\n    sha: ${OLD}\n  - name: nobody/missing\n    sha: ${OLD}\n  - name: meta/gated-llm\n    sha: ${OLD}\n`;
    const file = await catalogFile(text);
    const run = await depotAiAsync(['models', 'update', file], env);
    assert.equal(run.status, 1);
    assert.equal(
      run.stderr,
      `${file}:4:5: nobody/missing does not exist on ${hub.url} (or is private)\n${file}:6:5: meta/gated-llm is gated on ${hub.url}: only public, ungated models can be published\n`,
    );
    assert.equal(await readFile(file, 'utf8'), text.replace(`gpt2\n    sha: ${OLD}`, `gpt2\n    sha: ${hub.head('gpt2')}`));
  });

  test('rate limits and server errors are retried', async () => {
    const file = await catalogFile(`models:\n  - name: org/current\n    sha: ${OLD}\n`);
    hub.faults.push({ match: '/api/models/org/current', status: 429, times: 2 });
    const before = hub.count((r) => r.url.startsWith('/api/models/org/current'));
    const run = await depotAiAsync(['models', 'update', file], env);
    assert.equal(run.status, 0, run.stderr);
    // The head: two 429s, then the answer; then the facts: the model info and the file list.
    assert.equal(hub.count((r) => r.url.startsWith('/api/models/org/current')) - before, 3 + 2);
    assert.match(await readFile(file, 'utf8'), new RegExp(hub.head('org/current')));
  });

  test('a Hub that keeps failing is one clear line, and the file is left alone', async () => {
    const text = `models:\n  - name: org/current\n    sha: ${OLD}\n`;
    const file = await catalogFile(text);
    hub.faults.push({ match: '/api/models/org/current', status: 503, times: 3 });
    const run = await depotAiAsync(['models', 'update', file], env);
    assert.equal(run.status, 1);
    assert.equal(run.stderr, `depot-ai: ${hub.url}/api/models/org/current/revision/HEAD: HTTP 503 after 3 tries\n`);
    assert.equal(await readFile(file, 'utf8'), text);
  });

  test('an unreachable Hub is one clear line', async () => {
    const file = await catalogFile(`models:\n  - name: org/current\n    sha: ${OLD}\n`);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const run = await depotAiAsync(['models', 'update', file], { ...env, HF_ENDPOINT: `http://127.0.0.1:${port}` });
    assert.equal(run.status, 1);
    assert.equal(run.stderr, `depot-ai: http://127.0.0.1:${port}/api/models/org/current/revision/HEAD: ECONNREFUSED after 3 tries\n`);
  });
});

describe('depot-ai models top', () => {
  test('adds the most-downloaded models not yet listed, lower-cased, at their head, without duplicates', async () => {
    const text = `models:\n  - name: GPT2\n    sha: ${OLD}\n  # added by hand\n  - name: popular/second\n    sha: ${OLD}\n    tag: v1\n`;
    const file = await catalogFile(text);
    const run = await depotAiAsync(['models', 'top', '2', file], env);
    assert.equal(run.status, 0, run.stderr);
    const after = await readFile(file, 'utf8');
    // gpt2 (listed as GPT2) and popular/second (listed by hand) are skipped, the gated and the
    // private models too; the hand-written entries stay as they were.
    assert.equal(
      after,
      `${text}  - name: popular/first-model\n    sha: ${hub.head('Popular/First-Model')}\n    tag: latest\n  - name: popular/third\n    sha: ${hub.head('popular/third')}\n    tag: latest\n`,
    );
    assert.match(run.stdout, /: 2 models added$/m);

    const more = await depotAiAsync(['models', 'top', '5', file], env);
    assert.equal(more.status, 0, more.stderr);
    const { models, problems } = parseCatalog(await readFile(file, 'utf8'));
    assert.deepEqual(problems, []);
    assert.deepEqual(
      models.map((m) => `${m.name}:${m.tag}`),
      ['GPT2:latest', 'popular/second:v1', 'popular/first-model:latest', 'popular/third:latest', 'popular/fourth:latest', 'org/model-a:latest', 'org/current:latest'],
    );
    assert.match(more.stdout, /: 3 models added \(the Hub listed no more than 3 new public, ungated ones\)$/m);
  });

  test('N must be a positive whole number', async () => {
    const run = await depotAiAsync(['models', 'top', 'ten'], env);
    assert.equal(run.status, 2);
    assert.equal(run.stderr, 'depot-ai: models top needs a count N (a whole number, at least 1): depot-ai models top N [FILE]\n');
  });
});

describe('depot-ai models verify', () => {
  test('reports a missing repository, a gated one and an unknown sha, one line each, and sizes', async () => {
    const good = hub.head('org/current');
    const text = [
      'models:',
      `  - name: org/current\n    sha: ${good}`,
      `  - name: nobody/missing\n    sha: ${OLD}`,
      `  - name: meta/Gated-LLM\n    sha: ${OLD}`,
      `  - name: Org/Model-A\n    sha: ${'f'.repeat(40)}`,
      `  - name: x/private\n    sha: ${OLD}`,
      '',
    ].join('\n');
    const file = await catalogFile(text);
    const run = await depotAiAsync(['models', 'verify', file], env);
    assert.equal(run.status, 1);
    assert.equal(
      run.stderr,
      [
        `${file}:4:5: nobody/missing does not exist on ${hub.url} (or is private)`,
        `${file}:6:5: meta/Gated-LLM is gated on ${hub.url}: only public, ungated models can be published`,
        `${file}:8:5: sha ${'f'.repeat(40)} is not a revision of Org/Model-A on ${hub.url}`,
        `${file}:10:5: x/private does not exist on ${hub.url} (or is private)`,
        '',
      ].join('\n'),
    );
    // config.json and the weights (2 KiB); .gitattributes is not part of the image.
    assert.equal(run.stdout, `org/current@${good.slice(0, 12)}: 2 files, 2.0 KiB\n${file}: 1 of 5 models verified\n${path.join(path.dirname(file), 'facts.json')}: facts of 1 model updated\n`);
  });

  test('an old sha that is still a revision passes', async () => {
    const file = await catalogFile(`models:\n  - name: gpt2\n    sha: ${OLD}\n`);
    const run = await depotAiAsync(['models', 'verify', file], env);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^gpt2@0123456789ab: 2 files, 2\.0 KiB$/m);
  });
});

describe('model facts (models/facts.json beside the catalog)', () => {
  const factsOf = async (file: string) => JSON.parse(await readFile(path.join(path.dirname(file), 'facts.json'), 'utf8'));

  test('update writes what the Hub states, and nothing it does not', async () => {
    hub.setRepo({ name: 'facts/full', downloads: 1234, likes: 56, pipelineTag: 'text-generation', libraryName: 'transformers', license: 'apache-2.0', parameters: 124_439_808, commits: [{ files: files('m') }] });
    hub.setRepo({ name: 'facts/bare', commits: [{ files: files('n') }] });
    const file = await catalogFile(`models:\n  - name: facts/full\n    sha: ${OLD}\n  - name: facts/bare\n    sha: ${OLD}\n`);
    const run = await depotAiAsync(['models', 'update', file], env);
    assert.equal(run.status, 0, run.stderr);
    const facts = await factsOf(file);
    assert.ok(Date.now() - Date.parse(facts.updated) < 600_000);
    assert.deepEqual(facts.models, {
      'facts/bare': { sha: hub.head('facts/bare'), gated: false, downloads: 0, likes: 0, files: 2, bytes: 2048 + `{"seed":"m"}`.length },
      'facts/full': { sha: hub.head('facts/full'), task: 'text-generation', library: 'transformers', license: 'apache-2.0', gated: false, parameters: 124_439_808, downloads: 1234, likes: 56, files: 2, bytes: 2048 + `{"seed":"m"}`.length },
    });
  });

  test('verify refreshes the models it checks, keeps the others listed, drops the unlisted', async () => {
    const file = await catalogFile(`models:\n  - name: org/current\n    sha: ${hub.head('org/current')}\n  - name: gpt2\n    sha: ${OLD}\n`);
    const kept = { sha: OLD, gated: false, downloads: 1, likes: 2 };
    await writeFile(path.join(path.dirname(file), 'facts.json'), JSON.stringify({ updated: '2024-01-01T00:00:00.000Z', models: { gpt2: kept, 'gone/model': kept } }));
    hub.faults.push({ match: '/api/models/gpt2/revision/HEAD', status: 404, times: 1 });
    const run = await depotAiAsync(['models', 'verify', file], env);
    assert.equal(run.status, 1, 'gpt2 reads as missing once');
    const facts = await factsOf(file);
    assert.deepEqual(Object.keys(facts.models), ['gpt2', 'org/current']);
    assert.deepEqual(facts.models.gpt2, kept);
    assert.equal(facts.models['org/current'].downloads, 10);
  });

  test('a broken facts file is one line naming the file and field; nothing is written', async () => {
    const text = `models:\n  - name: gpt2\n    sha: ${OLD}\n`;
    const file = await catalogFile(text);
    const factsFile = path.join(path.dirname(file), 'facts.json');
    for (const [content, message] of [
      ['{"updated":"2024-01-01","models":{"gpt2":{"sha":"' + OLD + '","gated":false,"downloads":-1,"likes":0}}}', 'models["gpt2"].downloads: expected a whole number >= 0, got -1'],
      ['{"updated":"2024-01-01","models":{"gpt2":{"sha":"' + OLD + '","gated":false,"downloads":1,"likes":0,"stars":3}}}', 'models["gpt2"].stars: unknown key'],
      ['{"updated":"2024-01-01","models":{"gpt2":{"gated":false,"downloads":1,"likes":0}}}', 'models["gpt2"].sha: missing'],
      ['{"models":', 'not JSON'],
    ]) {
      await writeFile(factsFile, content);
      for (const command of ['update', 'verify']) {
        const run = await depotAiAsync(['models', command, file], env);
        assert.equal(run.status, 1);
        assert.ok(run.stderr.startsWith(`depot-ai: ${factsFile}: ${message}`), run.stderr);
        assert.equal(run.stderr.split('\n').length, 2, 'one line');
        assert.equal(await readFile(factsFile, 'utf8'), content);
        assert.equal(await readFile(file, 'utf8'), text);
      }
    }
  });
});

describe('changes since a git revision', () => {
  let repo: string;
  let file: string;
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  before(async () => {
    repo = tempDir('depot-git-');
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 'test@example.com');
    git('config', 'user.name', 'test');
    file = path.join(repo, 'models', 'models.yaml');
    execFileSync('mkdir', ['-p', path.dirname(file)]);
    await writeFile(file, `models:\n  - name: gpt2\n    sha: ${OLD}\n  - name: org/current\n    sha: ${OLD}\n  - name: popular/fourth\n    sha: ${OLD}\n`);
    git('add', '.');
    git('commit', '-q', '-m', 'base');
    await writeFile(file, `models:\n  - name: org/current\n    sha: ${hub.head('org/current')}\n  - name: gpt2\n    sha: ${OLD}\n  - name: nobody/missing\n    sha: ${OLD}\n`);
  });

  test('models changed --since lists what to build as JSON', async () => {
    const run = await depotAiAsync(['models', 'changed', file, '--since', 'HEAD'], env);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), [
      { name: 'org/current', image: 'org/current', tag: 'latest', sha: hub.head('org/current'), change: 'sha' },
      { name: 'nobody/missing', image: 'nobody/missing', tag: 'latest', sha: OLD, change: 'added' },
    ]);
  });

  test('models changed --name picks one model (manual publishing)', async () => {
    const run = await depotAiAsync(['models', 'changed', file, '--name', 'GPT2'], env);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), [{ name: 'gpt2', image: 'gpt2', tag: 'latest', sha: OLD }]);
    const missing = await depotAiAsync(['models', 'changed', file, '--name', 'nope/nope'], env);
    assert.equal(missing.status, 2);
    assert.equal(missing.stderr, `depot-ai: "nope/nope" is not in ${file}\n`);
  });

  test('an unknown revision is one clear line', async () => {
    const run = await depotAiAsync(['models', 'changed', file, '--since', 'no-such-branch'], env);
    assert.equal(run.status, 1);
    assert.equal(run.stderr, 'depot-ai: unknown git revision "no-such-branch" (fetch it first, e.g. git fetch origin no-such-branch)\n');
  });

  test('verify --changed-since checks only the changed entries and writes a summary table', async () => {
    const summary = path.join(repo, 'summary.md');
    const gptRequests = hub.count((r) => r.url.startsWith('/api/models/gpt2'));
    const run = await depotAiAsync(['models', 'verify', file, '--changed-since', 'HEAD', '--summary', summary], env);
    assert.equal(run.status, 1);
    assert.equal(run.stderr, `${file}:6:5: nobody/missing does not exist on ${hub.url} (or is private)\n`);
    assert.match(run.stdout, /: 1 of 2 models added or changed since HEAD verified$/m);
    assert.equal(hub.count((r) => r.url.startsWith('/api/models/gpt2')), gptRequests, 'the unchanged gpt2 is not checked');
    const table = await readFile(summary, 'utf8');
    assert.match(table, /^### Models added or changed since `HEAD`$/m);
    assert.match(table, /^\| model \| change \| sha \| tag \| files \| size \| status \|$/m);
    assert.match(table, new RegExp(`^\\| \`org/current\` \\| sha \\| \`${hub.head('org/current').slice(0, 12)}\` \\| latest \\| 2 \\| 2\\.0 KiB \\| ✅ \\|$`, 'm'));
    assert.match(table, /^\| `nobody\/missing` \| added \| `0123456789ab` \| latest \|  \|  \| ❌ nobody\/missing does not exist on .* \(or is private\) \|$/m);
  });

  test('a file that did not exist at the revision: every entry is added', async () => {
    const other = path.join(repo, 'models', 'new.yaml');
    await writeFile(other, `models:\n  - name: gpt2\n    sha: ${OLD}\n`);
    const run = await depotAiAsync(['models', 'changed', other, '--since', 'HEAD'], env);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout).map((m: { change: string }) => m.change), ['added']);
  });
});
