// `astro --help` against `node -e 0`: how much start-up cost astro adds to a bare Node process.
import path from 'node:path';
import { benchEnv, compare, type Comparison } from './lib.js';

export default function run(): Comparison {
  const bin = path.resolve('bin/astro.js');
  return compare(
    'astro --help vs node -e 0',
    { label: 'node -e 0', command: process.execPath, args: ['-e', '0'], options: { env: benchEnv() } },
    { label: 'astro --help', command: process.execPath, args: [bin, '--help'], options: { env: benchEnv() } },
    { runs: 21, target: 3 },
  );
}
