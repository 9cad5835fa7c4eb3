/**
 * The config lock is Astronomer's CLI's: flock(2) on `<file>.lock`. Another holder is played by util-linux
 * `flock` (the same system call Go's gofrs/flock makes), so these tests exercise the real kernel lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { updateConfigFile } from '../../../src/config/file.js';
import { ConfigLockError, withFileLock, type LockHelper } from '../../../src/config/lock.js';
import { AstroConfig } from '../../../src/config/store.js';

let dir: string;
let file: string;
let lockFile: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-lock-'));
  file = path.join(dir, 'config.yaml');
  lockFile = `${file}.lock`;
});
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await fs.rm(dir, { recursive: true, force: true });
});

/** Holds the flock in another process until `release()`; resolves once the lock is held. */
async function holdLock(target: string): Promise<{ release: () => Promise<void> }> {
  const child = spawn('flock', ['-x', target, '-c', 'echo held; read _'], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('held') && resolve());
    child.once('error', reject);
  });
  return {
    release: async () => {
      child.stdin!.end('\n');
      await exited;
    },
  };
}

/** True when another process could take the lock right now (flock -n). */
function lockIsFree(target: string): Promise<boolean> {
  return new Promise((resolve) => {
    spawn('flock', ['-n', target, 'true']).once('close', (code) => resolve(code === 0));
  });
}

describe.each<[string, LockHelper[]]>([
  ['util-linux flock', ['flock']],
  ['perl', ['perl']],
])('the config lock, taken with %s', (_name, helpers) => {
  it("is not stopped by an empty config.yaml.lock left by Astronomer's CLI, and leaves it in place", async () => {
    await fs.writeFile(lockFile, '');
    await fs.writeFile(file, 'context: localhost\nfoo: {bar: 1}\n');
    const written = await updateConfigFile(file, (doc) => ({ ...doc, context: 'astronomer.io' }), { helpers, timeoutMs: 2_000 });
    expect(written.context).toBe('astronomer.io');
    expect(parse(await fs.readFile(file, 'utf8'))).toEqual({ context: 'astronomer.io', foo: { bar: 1 } });
    const lock = await fs.stat(lockFile);
    expect(lock.isFile()).toBe(true);
    expect(lock.size).toBe(0);
    expect(await lockIsFree(lockFile)).toBe(true);
  });

  it('is held during the work and released after it, also when the work fails', async () => {
    let heldInside = false;
    await withFileLock(
      lockFile,
      async () => {
        heldInside = !(await lockIsFree(lockFile));
      },
      { helpers },
    );
    expect(heldInside).toBe(true);
    expect(await lockIsFree(lockFile)).toBe(true);
    await expect(withFileLock(lockFile, () => Promise.reject(new Error('boom')), { helpers })).rejects.toThrow('boom');
    expect(await lockIsFree(lockFile)).toBe(true);
  });

  it('waits for another holder, and fails with the lock file named when the holder keeps it too long', async () => {
    await fs.writeFile(file, 'context: localhost\n');
    const holder = await holdLock(lockFile);
    const error = await updateConfigFile(file, (doc) => ({ ...doc, context: 'x' }), { helpers, timeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigLockError);
    expect((error as ConfigLockError).message).toContain(lockFile);
    expect((error as ConfigLockError).message).toMatch(/another astro process/);
    expect(await fs.readFile(file, 'utf8')).toBe('context: localhost\n');
    await holder.release();
  });

  it('goes ahead as soon as the other holder lets go', async () => {
    await fs.writeFile(file, 'context: localhost\n');
    const holder = await holdLock(lockFile);
    let done = false;
    const write = updateConfigFile(file, (doc) => ({ ...doc, context: 'after' }), { helpers, timeoutMs: 30_000 }).then((d) => {
      done = true;
      return d;
    });
    // The writer is blocked while the lock is held: nothing written yet.
    await new Promise((r) => setTimeout(r, 200));
    expect(done).toBe(false);
    expect(await fs.readFile(file, 'utf8')).toBe('context: localhost\n');
    await holder.release();
    expect((await write).context).toBe('after');
  });
});

describe('the config lock', () => {
  it('removes an empty lock folder left by earlier versions of astro (mkdir locks) and writes', async () => {
    await fs.mkdir(lockFile);
    await updateConfigFile(file, (doc) => ({ ...doc, context: 'localhost' }));
    expect((await fs.stat(lockFile)).isFile()).toBe(true);
    expect(parse(await fs.readFile(file, 'utf8'))).toEqual({ context: 'localhost' });
  });

  it('says which helpers are missing when neither can run', async () => {
    const error = await withFileLock(lockFile, async () => 1, { helpers: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigLockError);
    expect((error as Error).message).toMatch(/neither the flock command .* nor perl/);
  });

  it('stops waiting when the command is interrupted', async () => {
    const holder = await holdLock(lockFile);
    const controller = new AbortController();
    const attempt = withFileLock(lockFile, async () => 'ran', { signal: controller.signal, timeoutMs: 30_000 });
    setTimeout(() => controller.abort('SIGINT'), 100);
    await expect(attempt).rejects.toBeDefined();
    await holder.release();
  });

  it('excludes a writer that follows the same protocol: interleaved read-modify-writes lose nothing', async () => {
    await fs.writeFile(file, 'context: localhost\n');
    // The other writer rewrites the file in place (truncate + write, as viper does) under `flock config.yaml.lock`,
    // with a pause between reading and writing so that an unlocked writer would lose updates.
    const peerScript = [
      'for i in $(seq 1 15); do',
      `  flock -x "${lockFile}" sh -c 'c=$(cat "$0"); sleep 0.01; printf "%s\\npeer_$1: v\\n" "$c" > "$0"' "${file}" "$i"`,
      'done',
    ].join('\n');
    const peer = new Promise<void>((resolve, reject) => {
      const child = spawn('sh', ['-c', peerScript], { stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(child);
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`peer writer exited ${code}`))));
    });
    const ours = (async () => {
      const cfg = await AstroConfig.load({ globalFile: file });
      for (let i = 0; i < 15; i++) await cfg.saveContext(`ours${i}.example.com`, { token: `Bearer t${i}` });
    })();
    await Promise.all([peer, ours]);
    const doc = parse(await fs.readFile(file, 'utf8')) as Record<string, unknown> & { contexts: Record<string, unknown> };
    expect(Object.keys(doc).filter((k) => k.startsWith('peer_'))).toHaveLength(15);
    expect(Object.keys(doc.contexts)).toHaveLength(15);
    expect(doc.context).toBe('localhost');
  });
});
