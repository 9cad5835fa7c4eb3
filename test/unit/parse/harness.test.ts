import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BugError } from '../../../src/errors.js';
import { harnessParentDir, harnessVersion, MessageReader } from '../../../src/parse/harness.js';
import type { HarnessMessage } from '../../../src/parse/schema.js';

describe('MessageReader', () => {
  it('validates whole lines, across chunk boundaries', () => {
    const seen: HarnessMessage[] = [];
    const reader = new MessageReader((m) => seen.push(m));
    reader.push('{"type": "done", "preloaded": 1, ');
    expect(seen).toEqual([]);
    reader.push('"elapsedMs": 5}\n{"type": "fatal", "reason": "airflow-import", "message": "No module named airflow"}\n{"type"');
    expect(seen.map((m) => m.type)).toEqual(['done', 'fatal']);
    expect(reader.remainder).toBe('{"type"');
  });

  it('refuses lines that are not JSON or not a known message', () => {
    expect(() => new MessageReader(() => undefined).push('hello\n')).toThrow(BugError);
    expect(() => new MessageReader(() => undefined).push('{"type": "file", "path": 1}\n')).toThrow(/unexpected message/);
  });
});

describe('the shipped harness', () => {
  it('is found next to the sources and versioned by its content', () => {
    const dir = path.join(harnessParentDir(), 'astro_parse');
    expect(fs.existsSync(path.join(dir, 'supervisor.py'))).toBe(true);
    expect(harnessVersion()).toMatch(/^[0-9a-f]{64}$/);
  });
});
