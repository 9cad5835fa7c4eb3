// Runs every bench/*.bench.ts (or the ones named on the command line) and prints their ratios.
// Requires a build (npm run build). Writes .state/bench/results.json.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { report, type Comparison } from './lib.js';

const dir = path.dirname(new URL(import.meta.url).pathname);
const wanted = process.argv.slice(2);
const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.bench.ts')).sort();
const results: Comparison[] = [];
// The Docker Engine the image rows build with, started by the repo's own script when none answers (after a restart,
// none does): otherwise those rows fail for both sides and read as the baseline's failure.
execFileSync('bash', [path.join(dir, '..', 'scripts', 'dockerd.sh'), 'ensure'], { stdio: ['ignore', 'ignore', 'inherit'] });
for (const file of files) {
  const name = file.replace(/\.bench\.ts$/, '');
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const mod = (await import(path.join(dir, file))) as { default: () => Comparison | Comparison[] | Promise<Comparison | Comparison[]> };
  const out = await mod.default();
  for (const r of Array.isArray(out) ? out : [out]) {
    results.push(r);
    console.log(report(r));
  }
}
await fs.mkdir('.state/bench', { recursive: true });
await fs.writeFile('.state/bench/results.json', JSON.stringify(results, null, 2));
