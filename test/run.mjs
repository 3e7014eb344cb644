// Runs every compiled test file under dist/test with node's own runner.
// Node 20 has no glob support in `node --test`, so the files are listed here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (p.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// CI tests the runtime the image ships (.ci/run and `npm test` take it from scripts/node24.sh).
const major = Number(process.versions.node.split('.')[0]);
console.log(`node ${process.version}`);
if (process.env.CI === 'true' && major !== 24) {
  console.error(`CI runs the tests on Node 24 LTS, not ${process.version}: use bash .ci/run or npm test`);
  process.exit(1);
}

const filter = process.argv.slice(2);
let files = collect('dist/test').sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const res = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-timeout=600000', ...files], {
  stdio: 'inherit',
});
process.exit(res.status ?? 1);
