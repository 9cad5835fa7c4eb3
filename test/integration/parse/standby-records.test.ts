/**
 * The bookkeeping of standbys (src/parse/standby.ts), with a stand-in process instead of a harness: one per key,
 * a claim takes it away from every other run, one that is gone is cleared, and stopping leaves nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { claimStandby, standbyFolder, standbyPaths, startStandby, stopStandbys, type StandbyRecord } from '../../../src/parse/standby.js';
import { processAlive } from '../../../src/util/process.js';
import { processGone, removeTempDirs, tempDir } from './helpers.js';

afterAll(removeTempDirs);

/** A stand-in that lives `seconds` and names its scratch folder on its command line, as a standby does. */
async function start(cacheRoot: string, key: string, seconds: number, projectDir?: string): Promise<string> {
  const scratch = tempDir('astro-parse-standin-');
  const shared = path.join(scratch, 'run');
  fs.mkdirSync(shared);
  await startStandby({
    cacheRoot,
    key,
    projectDir: projectDir ?? scratch,
    scratch,
    ...standbyPaths(shared)!,
    command: 'sh',
    args: ['-c', `sleep ${seconds}`, scratch],
    cgroup: undefined,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  return scratch;
}

const record = (cacheRoot: string, key: string) => JSON.parse(fs.readFileSync(path.join(standbyFolder(cacheRoot), `${key}.json`), 'utf8')) as StandbyRecord;

describe('standby records', () => {
  it('keeps one standby per key, and stopping ends it and removes its folder', async () => {
    const cacheRoot = tempDir('astro-parse-standby-root-');
    const first = await start(cacheRoot, 'k1', 60);
    const second = await start(cacheRoot, 'k1', 60);
    expect(fs.existsSync(second)).toBe(false);
    const kept = record(cacheRoot, 'k1');
    expect(kept.scratch).toBe(first);
    expect(processAlive(kept.pid)).toBe(true);
    expect(await stopStandbys(cacheRoot)).toBe(1);
    expect(await processGone(kept.pid)).toBe(true);
    expect(fs.existsSync(first)).toBe(false);
    expect(fs.readdirSync(standbyFolder(cacheRoot))).toEqual([]);
  });

  it('a claim takes the record away; one whose process ended before it was ready is cleared', async () => {
    const cacheRoot = tempDir('astro-parse-standby-root-');
    const scratch = await start(cacheRoot, 'k2', 0.2);
    const { pid } = record(cacheRoot, 'k2');
    expect(await claimStandby(cacheRoot, 'k2')).toBeUndefined();
    expect(await processGone(pid)).toBe(true);
    expect(fs.existsSync(scratch)).toBe(false);
    expect(fs.readdirSync(standbyFolder(cacheRoot))).toEqual([]);
    expect(await claimStandby(cacheRoot, 'k2')).toBeUndefined();
  });

  it('the next start clears the records of standbys that are gone', async () => {
    const cacheRoot = tempDir('astro-parse-standby-root-');
    const gone = await start(cacheRoot, 'k3', 0.1);
    const { pid } = record(cacheRoot, 'k3');
    expect(await processGone(pid)).toBe(true);
    await start(cacheRoot, 'k4', 60);
    expect(fs.existsSync(gone)).toBe(false);
    expect(fs.readdirSync(standbyFolder(cacheRoot)).sort()).toEqual(['k4.json']);
    expect(await stopStandbys(cacheRoot)).toBe(1);
  });

  it('one standby waits per project: a new key for the same project retires the old one', async () => {
    const cacheRoot = tempDir('astro-parse-standby-root-');
    const project = tempDir('astro-parse-standby-project-');
    const old = await start(cacheRoot, 'old-env', 60, project);
    const { pid } = record(cacheRoot, 'old-env');
    const other = await start(cacheRoot, 'other-project', 60);
    await start(cacheRoot, 'new-env', 60, project);
    expect(await processGone(pid)).toBe(true);
    expect(fs.existsSync(old)).toBe(false);
    expect(fs.existsSync(other)).toBe(true);
    expect(fs.readdirSync(standbyFolder(cacheRoot)).sort()).toEqual(['new-env.json', 'other-project.json']);
    expect(await stopStandbys(cacheRoot)).toBe(2);
  });
});
