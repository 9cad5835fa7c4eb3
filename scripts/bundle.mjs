// Bundles the CLI for start-up speed: one CommonJS file, dist/bundle/main.cjs, that bin/astro.js compiles with a V8
// code cache (Node 20 has no compile cache for ES modules; see bin/astro.js). Modules that commands import lazily stay
// lazy inside the file (esbuild initialises them on first import). Heavy or native dependencies stay external and
// load only in the commands that need them. `tsc` still type-checks and emits dist/ (tests and benches import it).
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';

// `--outdir DIR` for private builds (the fault suite bundles its own copy); default dist/bundle.
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? process.argv[at + 1] : 'dist/bundle';
const outfile = path.join(outdir, 'main.cjs');

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
// The parse harness's version (a hash of python/astro_parse, which the package ships beside the bundle), computed by
// the same code from tsc's output, once here instead of in every parse (src/parse/harness.ts).
const { harnessVersion } = await import(new URL('../dist/parse/harness.js', import.meta.url).href);
const BUNDLED = ['zod', 'commander', 'yaml', 'tar-stream', '@balena/dockerignore'];
// Built-in modules only some commands use, loaded when first used instead of when the module importing them starts:
// esbuild requires an import where the importing module is initialised, and a DAG-only deploy to an http origin
// compiled https and tls (imported for https origins), child_process (git, the config lock's helper), readline
// (prompts) and fs/promises (which loads readline's internals too) that it never used: about 4 ms of every such
// command. (test/integration/cli/loaded-modules.test.ts checks what a DAG-only deploy loads.)
const LAZY_BUILTINS = ['node:https', 'node:tls', 'node:child_process', 'node:readline/promises', 'node:fs/promises'];

/**
 * Each import of a LAZY_BUILTINS module gets an object that requires the real one on the first read of any property.
 * Its own keys are the module's export names as this Node has them, so esbuild's default-import interop, which copies
 * every key, reads none; a name another Node version has and this one lacks is still read through the proxy.
 */
function lazyBuiltins(ids) {
  const nodeRequire = createRequire(import.meta.url);
  return {
    name: 'lazy-builtins',
    setup(build) {
      const filter = new RegExp(`^(${ids.map((id) => id.replace(/[/.]/g, '\\$&')).join('|')})$`);
      build.onResolve({ filter }, (args) =>
        args.namespace === 'lazy-builtin' ? { path: args.path, external: true } : { path: args.path, namespace: 'lazy-builtin' },
      );
      build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
        const names = Object.keys(nodeRequire(args.path));
        const id = JSON.stringify(args.path);
        return {
          loader: 'js',
          contents: [
            'let loaded;',
            `const keys = Object.fromEntries(${JSON.stringify(names)}.map((name) => [name, undefined]));`,
            `module.exports = new Proxy(keys, { get: (_, name) => (loaded ??= require(${id}))[name] });`,
          ].join('\n'),
        };
      });
    },
  };
}
const external = Object.keys(pkg.dependencies).filter((name) => !BUNDLED.includes(name));

await build({
  entryPoints: [new URL('../src/cli/main.ts', import.meta.url).pathname],
  outfile,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // Less to read and to hash for every start; names are kept, so stack traces still read (and the map maps them).
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  // Only the pure-ESM libraries every command loads, tar-stream (small, CommonJS, on every DAG deploy: bundled it
  // saves a dozen module loads), and @balena/dockerignore (small, CommonJS, on every image deploy and every plan:
  // loaded from node_modules without a code cache, it and tar-fs, which the build context used then, took 9 ms of a
  // no-op redeploy) are bundled; the rest (CommonJS, heavy, native) load from node_modules with Node's own interop, and
  // only when a command needs them.
  external,
  // Two modules find files beside themselves (package.json, the Python harness) from their own URL; in the bundle both
  // values are known when it is built.
  define: {
    'import.meta.url': '__astroModuleUrl',
    __ASTRO_HARNESS_VERSION__: JSON.stringify(harnessVersion()),
    __ASTRO_CLI_VERSION__: JSON.stringify(pkg.version),
  },
  banner: { js: 'const __astroModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [lazyBuiltins(LAZY_BUILTINS)],
});

// The code is run by vm.Script, whose dynamic import() Node 20 supports only behind an experimental flag. The only
// ones left are of external ES modules (ora, open, graphql-request): they go through `__import`, which bin/astro.js
// passes in (its own import(), resolving from the package). Same length, so the source map still fits.
const code = readFileSync(outfile, 'utf8');
const specifiers = new Set();
const rewritten = code.replace(/\bimport\(("[^"]+")\)/g, (call, quoted) => {
  const specifier = JSON.parse(quoted);
  if (!external.some((name) => specifier === name || specifier.startsWith(`${name}/`))) {
    throw new Error(`bundle: a dynamic import of ${specifier} was left in ${outfile}; only external modules may be imported lazily`);
  }
  specifiers.add(specifier);
  return `__import(${quoted})`;
});
if (/\bimport\(/.test(rewritten.replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '""'))) {
  throw new Error(`bundle: ${outfile} has an import() that is not of a named external module`);
}
// bin/astro.js reads the file as Latin-1, the fast way for V8: esbuild escapes every non-ASCII character.
if (/[^\x00-\x7f]/.test(rewritten)) throw new Error(`bundle: ${outfile} holds a non-ASCII character; bin/astro.js reads it as Latin-1`);
writeFileSync(outfile, rewritten);

// The code caches bin/astro.js wrote were made from the previous build; so were the ES-module chunks of older builds.
rmSync(path.join(outdir, 'code-cache'), { recursive: true, force: true });
for (const name of readdirSync(outdir)) {
  if (/^(main|[A-Za-z0-9-]+-[A-Z0-9]{8})\.js(\.map)?$/.test(name)) rmSync(path.join(outdir, name));
}
