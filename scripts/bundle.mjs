// Bundles the CLI for start-up speed: one ESM graph with lazy chunks (dynamic imports stay lazy), so Node resolves
// and loads a handful of files instead of hundreds. Heavy or native dependencies stay external and load only in
// the commands that need them. `tsc` still type-checks and emits dist/ (tests and benches import it).
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

// `--outdir DIR` for private builds (the fault suite bundles its own copy); default dist/bundle.
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? process.argv[at + 1] : 'dist/bundle';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const BUNDLED = ['zod', 'commander', 'yaml', 'tar-stream'];

await build({
  entryPoints: [new URL('../src/cli/main.ts', import.meta.url).pathname],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // Only the pure-ESM libraries every command loads, and tar-stream (small, CommonJS, on every DAG deploy: bundled it
  // saves a dozen module loads), are bundled; the rest (CommonJS, heavy, native) load from node_modules with Node's
  // own interop, and only when a command needs them.
  external: Object.keys(pkg.dependencies).filter((name) => !BUNDLED.includes(name)),
  // commander is CommonJS: its require() of Node's own modules needs a real require in an ES module.
  banner: { js: 'import { createRequire as __astroCreateRequire } from "node:module"; const require = __astroCreateRequire(import.meta.url);' },
});
