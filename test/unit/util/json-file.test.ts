import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { readSealedJsonFile, writeJsonFileAtomic, writeSealedJsonFileAtomic } from '../../../src/util/json-file.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-json-file-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A schema that counts how often it validated something. */
function countingSchema() {
  const counter = { calls: 0 };
  const schema = z.object({ name: z.string(), n: z.number() }).refine(() => {
    counter.calls += 1;
    return true;
  });
  return { schema, counter };
}

describe('sealed JSON files', () => {
  it('reads back what it wrote without validating it again, and leaves no temporary file', async () => {
    const { schema, counter } = countingSchema();
    const file = path.join(dir, 'sub', 'state.json');
    await writeSealedJsonFileAtomic(file, { name: 'a', n: 1 }, 'shape-1');
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^astro-seal:[0-9a-f]{64}\n\{"name":"a","n":1\}$/);
    expect(await readSealedJsonFile(file, schema, 'shape-1')).toEqual({ name: 'a', n: 1 });
    expect(counter.calls).toBe(0);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['state.json']);
  });

  it('validates a file sealed for another shape, and refuses it when it does not fit', async () => {
    const { schema, counter } = countingSchema();
    const file = path.join(dir, 'state.json');
    await writeSealedJsonFileAtomic(file, { name: 'a', n: 1 }, 'shape-1');
    expect(await readSealedJsonFile(file, schema, 'shape-2')).toEqual({ name: 'a', n: 1 });
    expect(counter.calls).toBe(1);
    await writeSealedJsonFileAtomic(file, { name: 'a', n: 'one' }, 'shape-1');
    expect(await readSealedJsonFile(file, schema, 'shape-2')).toBeUndefined();
  });

  it('validates a file edited after it was sealed', async () => {
    const { schema, counter } = countingSchema();
    const file = path.join(dir, 'state.json');
    await writeSealedJsonFileAtomic(file, { name: 'a', n: 1 }, 'shape-1');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"n":1', '"n":2'));
    expect(await readSealedJsonFile(file, schema, 'shape-1')).toEqual({ name: 'a', n: 2 });
    expect(counter.calls).toBe(1);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"n":2', '"n":"two"'));
    expect(await readSealedJsonFile(file, schema, 'shape-1')).toBeUndefined();
  });

  it('reads a truncated, empty, missing or unsealed file as the schema allows', async () => {
    const { schema } = countingSchema();
    const file = path.join(dir, 'state.json');
    await writeSealedJsonFileAtomic(file, { name: 'a', n: 1 }, 'shape-1');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').slice(0, -3));
    expect(await readSealedJsonFile(file, schema, 'shape-1')).toBeUndefined();
    fs.writeFileSync(file, '');
    expect(await readSealedJsonFile(file, schema, 'shape-1')).toBeUndefined();
    expect(await readSealedJsonFile(path.join(dir, 'missing.json'), schema, 'shape-1')).toBeUndefined();
    // A file from before seals (plain JSON) is validated and read.
    await writeJsonFileAtomic(file, { name: 'b', n: 2 });
    expect(await readSealedJsonFile(file, schema, 'shape-1')).toEqual({ name: 'b', n: 2 });
    fs.writeFileSync(file, 'astro-seal:not-a-seal\n{"name":"c","n":3}');
    expect(await readSealedJsonFile(file, schema, 'shape-1')).toEqual({ name: 'c', n: 3 });
  });
});
