import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;
/** Set by scripts/bundle.mjs from package.json: the bundle need not find and read it on every command. */
declare const __ASTRO_CLI_VERSION__: string | undefined;

/** This package's version, from the package.json above this module (dist/, dist/bundle/ or src/). */
export function cliVersion(): string {
  if (cached !== undefined) return cached;
  if (typeof __ASTRO_CLI_VERSION__ === 'string') return (cached = __ASTRO_CLI_VERSION__);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'astro-deploy-cli' && pkg.version) return (cached = pkg.version);
    }
    const parent = path.dirname(dir);
    if (parent === dir) return (cached = '0.0.0');
    dir = parent;
  }
}
