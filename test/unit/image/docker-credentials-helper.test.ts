// A credential helper that exits before reading its stdin (src/image/docker-credentials.ts): the CLI must report
// the broken helper by name, never crash on the EPIPE of the write it could not deliver.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readDockerCredentials, runCredentialHelper } from '../../../src/image/docker-credentials.js';
import { UserError } from '../../../src/errors.js';

let dir: string;
let binDir: string;
const env = () => ({ PATH: `${binDir}:${process.env.PATH}` });

// Errors nobody handled (an 'error' event without a listener) reach the process; count them per test.
const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-cred-helper-'));
  binDir = path.join(dir, 'bin');
  await fs.mkdir(binDir);
  // Neither reads stdin: one fails loudly, one exits 0 with nothing to say.
  await fs.writeFile(path.join(binDir, 'docker-credential-sealed'), '#!/bin/sh\necho "vault sealed" >&2\nexit 3\n', { mode: 0o755 });
  await fs.writeFile(path.join(binDir, 'docker-credential-mute'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  uncaught.length = 0;
  process.on('uncaughtException', onUncaught);
});

afterEach(() => {
  process.off('uncaughtException', onUncaught);
});

/** Lets a late 'error' event (emitted after the child's exit was reported) surface before we count. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('a credential helper that exits without reading stdin', () => {
  it('is a UserError naming the helper even when the write certainly fails (more than a pipe buffer queued)', async () => {
    // 1 MiB cannot fit in the pipe: the write is still pending when the helper exits, so EPIPE is certain.
    const address = `registry.example.com/${'x'.repeat(1024 * 1024)}`;
    const run = runCredentialHelper(env());
    const sealed = await run('sealed', address).catch((e: unknown) => e);
    expect(sealed).toBeInstanceOf(UserError);
    expect((sealed as Error).message).toBe('docker-credential-sealed get failed: vault sealed');
    const mute = await run('mute', address).catch((e: unknown) => e);
    expect(mute).toBeInstanceOf(UserError);
    expect((mute as Error).message).toContain('docker-credential-mute');
    await settle();
    expect(uncaught).toEqual([]);
  });

  it('never crashes across many quick exits racing the write (as under load)', async () => {
    const configDir = path.join(dir, 'config');
    await fs.mkdir(configDir, { recursive: true });
    await fs.writeFile(path.join(configDir, 'config.json'), JSON.stringify({ credsStore: 'sealed', credHelpers: { 'mute.example.com': 'mute' } }));
    const runHelper = runCredentialHelper(env());
    const rounds = 40;
    for (let round = 0; round < rounds; round += 1) {
      // A few at a time, so spawns and exits interleave with the writes.
      const results = await Promise.all(
        ['registry.example.com', 'mute.example.com', '127.0.0.1:5000', 'mute.example.com'].map((host) =>
          readDockerCredentials({ configDir, host, runHelper }).then(
            () => new Error(`resolved for ${host}`),
            (e: unknown) => e,
          ),
        ),
      );
      for (const [i, result] of results.entries()) {
        expect(result, `round ${round}, call ${i}`).toBeInstanceOf(UserError);
        expect((result as Error).message).toMatch(/^docker-credential-(sealed get failed: vault sealed|mute get answered something that is not JSON\.)$/);
      }
    }
    await settle();
    expect(uncaught).toEqual([]);
  });
});
