import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** This package's version, read from package.json next to dist/. */
export function cliVersion(): string {
  if (cached === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    cached = pkg.version;
  }
  return cached;
}
