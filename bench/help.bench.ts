// `astro --help` against `node -e 0`: how much start-up cost astro adds to a bare Node process.
import path from 'node:path';
import { compare, type Comparison } from './lib.js';

export default function run(): Comparison {
  const bin = path.resolve('bin/astro.js');
  return compare(
    'astro --help vs node -e 0',
    { label: 'node -e 0', command: process.execPath, args: ['-e', '0'] },
    { label: 'astro --help', command: process.execPath, args: [bin, '--help'] },
    { runs: 21, target: 3 },
  );
}
