// One build in a fresh process, so its peak RSS is the build's own: prints JSON.
import { buildImage } from '../builder/build.ts';
import { FolderSource } from '../sources/folder.ts';

const [dir, store] = process.argv.slice(2);
const result = await buildImage({ name: 'bench/model', source: new FolderSource(dir), store, tag: 'latest' });
console.log(JSON.stringify({ ...result, maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
