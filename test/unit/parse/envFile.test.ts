import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { parseEnvFile } from '../../../src/parse/envFile.js';

const none = () => undefined;

describe('parseEnvFile (docker --env-file semantics)', () => {
  it('takes values literally: quotes, spaces, `=` and `#` inside the value are kept', () => {
    const entries = parseEnvFile('A=1\nB="quoted"\nC= spaced \nD=x=y\nE=has # hash\n', none);
    expect(entries.map((e) => [e.name, e.value])).toEqual([
      ['A', '1'],
      ['B', '"quoted"'],
      ['C', ' spaced '],
      ['D', 'x=y'],
      ['E', 'has # hash'],
    ]);
  });

  it('skips blank lines and comments, ignores leading whitespace, CRLF and a BOM', () => {
    const entries = parseEnvFile('\uFEFF# comment\n\n   INDENTED=yes\r\n\t# also a comment\nLAST=1', none);
    expect(entries.map((e) => [e.name, e.value])).toEqual([
      ['INDENTED', 'yes'],
      ['LAST', '1'],
    ]);
  });

  it('copies a bare name from the caller environment, or drops it when unset', () => {
    const entries = parseEnvFile('FROM_HOST\nMISSING\nEMPTY=\n', (name) => (name === 'FROM_HOST' ? 'host-value' : undefined));
    expect(entries).toEqual([
      { name: 'FROM_HOST', value: 'host-value', inherited: true },
      { name: 'EMPTY', value: '', inherited: false },
    ]);
  });

  it('rejects a line without a name and a name with whitespace, naming the line', () => {
    expect(() => parseEnvFile('OK=1\n=value\n', none, '.env')).toThrow(/\.env:2: no variable name/);
    expect(() => parseEnvFile('BAD NAME=1\n', none)).toThrow(UserError);
    expect(() => parseEnvFile('BAD NAME=1\n', none)).toThrow(/contains whitespaces/);
  });
});
