// npm start: the example model, the registry and the site, all on this machine, offline.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, depotAi, startProcess } from './helpers/cli.ts';
import { tempDir } from './helpers/models.ts';

test('depot-ai start builds the example, serves registry and site on the ports it prints, and stops on Ctrl-C', { timeout: 240_000 }, async () => {
  const store = path.join(tempDir(), 'store');
  // Port 0: both servers pick a free port, and the printed URLs must carry the bound ones.
  const start = startProcess([CLI, 'start', '--store', store, '--port', '0', '--site-port', '0']);
  try {
    await start.waitFor(/Ctrl-C stops both\./);
    const { output } = start;
    assert.match(output, /built the example model depot-ai\/tiny-bert:latest \(sha256:[0-9a-f]{64}\)/);
    const port = Number(/registry {2}http:\/\/127\.0\.0\.1:(\d+)\/v2\//.exec(output)?.[1]);
    const sitePort = Number(/site {6}http:\/\/127\.0\.0\.1:(\d+)\//.exec(output)?.[1]);
    assert.ok(port > 0 && sitePort > 0, `bound ports printed:\n${output}`);
    const host = `127.0.0.1:${port}`;
    assert.ok(output.includes(`COPY --from=${host}/depot-ai/tiny-bert / .`), output);

    const v2 = await fetch(`http://${host}/v2/`);
    assert.equal(v2.status, 200);
    const catalog = (await (await fetch(`http://${host}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, ['depot-ai/tiny-bert']);

    const home = await (await fetch(`http://127.0.0.1:${sitePort}/`)).text();
    assert.ok(home.includes(`COPY --link --from=${host}/depot-ai/tiny-bert:latest / .`), 'the site points at the local registry');
    const page = await (await fetch(`http://127.0.0.1:${sitePort}/depot-ai/tiny-bert`)).text();
    assert.ok(page.includes('model.safetensors'), 'the example page lists its files');

    // The printed cp line works against the running registry.
    const dest = path.join(tempDir(), 'config.json');
    const cp = await depotAi(['cp', '--insecure', `${host}/depot-ai/tiny-bert:/config.json`, dest]);
    assert.equal(cp.status, 0, cp.stderr);
    assert.equal(JSON.parse(readFileSync(dest, 'utf8')).model_type, 'bert');
  } finally {
    start.child.kill('SIGINT');
  }
  assert.equal(await start.exited, 0, `a clean exit on Ctrl-C:\n${start.output.slice(-2000)}`);
});
