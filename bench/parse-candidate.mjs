// Candidate for bench/parse.bench.ts: one `astro dev parse` as the CLI would run it (a fresh Node process calling
// runParse from the build). Usage: node bench/parse-candidate.mjs PROJECT CACHE_DIR PYTHON
import { runParse } from '../dist/parse/index.js';

const [projectDir, cacheDir, python] = process.argv.slice(2);
const report = await runParse({ projectDir, cacheDir, python, hostEnv: { PATH: process.env.PATH } });
if (!report.summary.passed) {
  console.error(JSON.stringify(report.files.filter((f) => f.status === 'error'), null, 1));
  process.exit(1);
}
