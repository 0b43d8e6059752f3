// npm run bench: every speed and size target, measured and printed (never asserted in tests).
// The reference tools it compares against are built first (scripts/ensure-tools.js, as for npm test).
// Pass section names to run only some: npm run bench -- image registry site lazy
import { benchImage } from './image.ts';
import { benchLazy } from './lazy.ts';
import { benchRegistry } from './registry.ts';
import { benchSite } from './site.ts';
import { benchPullThroughReaders, benchSlowReaders } from './slow-readers.ts';
import { benchWorker } from './worker.ts';
import { benchLighthouse } from './lighthouse.ts';
import { benchStreamPush } from './stream-push.ts';

const SECTIONS: Record<string, () => Promise<void>> = {
  image: benchImage,
  registry: benchRegistry,
  'slow-readers': async () => {
    await benchSlowReaders();
    await benchPullThroughReaders();
  },
  site: benchSite,
  lazy: benchLazy,
  worker: benchWorker,
  lighthouse: benchLighthouse,
  'stream-push': benchStreamPush,
};
const wanted = process.argv.slice(2);
for (const name of wanted.length > 0 ? wanted : Object.keys(SECTIONS)) {
  const run = SECTIONS[name];
  if (!run) throw new Error(`unknown bench section "${name}"; choose from ${Object.keys(SECTIONS).join(', ')}`);
  await run();
}
