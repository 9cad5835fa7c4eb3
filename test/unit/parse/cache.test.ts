import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentHasher, ParseCache, snapshotTree, type RunState } from '../../../src/parse/cache.js';
import type { FileMessage, HelloMessage, ListingMessage } from '../../../src/parse/schema.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parse-cache-unit-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(rel: string, text: string, ageMs = 60_000) {
  const file = path.join(dir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  const when = new Date(Date.now() - ageMs);
  fs.utimesSync(file, when, when);
  return file;
}

describe('ContentHasher', () => {
  it('hashes content, remembers it by stat, and notices changes', async () => {
    const file = write('a.py', 'one');
    const hasher = new ContentHasher(path.join(dir, 'memo.json'));
    await hasher.load();
    const first = await hasher.hashFile(file);
    await hasher.save();
    const again = new ContentHasher(path.join(dir, 'memo.json'));
    await again.load();
    expect(await again.hashFile(file)).toBe(first);
    write('a.py', 'two');
    expect(await again.hashFile(file)).not.toBe(first);
    expect(await again.hashFile(path.join(dir, 'missing.py'))).toBeNull();
  });

  it('does not trust the stat of a file modified within the last moments', async () => {
    const file = write('fresh.py', 'aaa', 0);
    const hasher = new ContentHasher(path.join(dir, 'memo.json'));
    await hasher.load();
    await hasher.hashFile(file);
    await hasher.save();
    expect(fs.existsSync(path.join(dir, 'memo.json'))).toBe(false);
  });
});

describe('snapshotTree', () => {
  it('covers every file below the folder, follows symlinks, survives loops, skips __pycache__', async () => {
    write('dags/a.py', 'a');
    write('dags/sub/b.py', 'b');
    write('dags/__pycache__/a.cpython-311.pyc', 'x');
    fs.symlinkSync(path.join(dir, 'dags'), path.join(dir, 'dags', 'sub', 'loop'));
    const hasher = new ContentHasher(path.join(dir, 'memo.json'));
    const snapshot = await snapshotTree(path.join(dir, 'dags'), hasher);
    expect([...snapshot.files.keys()].map((f) => path.relative(dir, f)).sort()).toEqual(['dags/a.py', 'dags/sub/b.py']);
    const before = snapshot.key;
    write('dags/sub/b.py', 'changed');
    expect((await snapshotTree(path.join(dir, 'dags'), hasher)).key).not.toBe(before);
  });
});

describe('ParseCache state', () => {
  const hello: HelloMessage = {
    type: 'hello',
    protocol: 1,
    python: '3.11',
    airflowVersion: '3.1.8',
    airflowHome: '/p',
    dagsFolder: '/p/dags',
    pluginsFolder: null,
    safeMode: true,
    ignoreSyntax: 'glob',
    projectReadOnly: true,
    rootReadOnly: true,
    dbCreated: false,
    startupMs: 1,
    deps: { files: [], dirs: [], listings: [] },
  };

  /** The harness's message for a DAG file (dags/a.py) parsed without errors, whose import read `deps`. */
  const parsedFile = (file: string, deps: FileMessage['deps']): FileMessage => ({
    type: 'file',
    path: file,
    relPath: 'dags/a.py',
    durationMs: 1,
    output: '',
    outputDropped: 0,
    status: 'parsed',
    errors: [],
    dags: [],
    warnings: [],
    deps,
  });

  it('reuses a file result only while what its import read is unchanged', async () => {
    const dag = write('dags/a.py', 'dag');
    const settings = write('include/settings.json', '{"a": 1}');
    const message = parsedFile(dag, { files: [settings, path.join(dir, 'include', 'absent.json')], dirs: [path.join(dir, 'include')], listings: [] });
    const listing: ListingMessage = { type: 'listing', files: [{ path: dag, relPath: 'dags/a.py' }], skipped: [], unreadable: [] };
    const identity = (p: string) => p;
    const cache = new ParseCache(path.join(dir, 'cache'), dir, 'key');
    await cache.load();
    const entry = await cache.entryFor(message, 'hash-of-a', identity);
    await cache.saveState('tree', hello, listing, { [dag]: entry }, identity, 'none', { projectView: 'overlay', pidsLimit: 1024 });

    const state = await cache.loadState();
    expect(state?.network).toBe('none');
    expect(state?.sandbox).toEqual({ projectView: 'overlay', pidsLimit: 1024 });
    expect(await cache.reusable(state!, dag, 'hash-of-a', identity)).toBeDefined();
    expect(await cache.reusable(state!, dag, 'another-content', identity)).toBeUndefined();
    write('include/absent.json', 'now it exists');
    expect(await cache.reusable(state!, dag, 'hash-of-a', identity)).toBeUndefined();
  });

  it('a folder of which only some names count changes only with those names', async () => {
    const dag = write('dags/a.py', 'dag');
    write('dags/helpers_old.py', '');
    write('site/pkg-1.0.dist-info/METADATA', '');
    const message = parsedFile(dag, {
      files: [],
      dirs: [],
      listings: [
        // An import looked up `helpers` and `common` in dags/; importlib.metadata listed site/.
        { path: path.join(dir, 'dags'), modules: ['helpers', 'common'], metadata: false },
        { path: path.join(dir, 'site'), modules: [], metadata: true },
      ],
    });
    const identity = (p: string) => p;
    const cache = new ParseCache(path.join(dir, 'cache'), dir, 'partial');
    await cache.load();
    const entry = await cache.entryFor(message, 'hash-of-a', identity);
    const reusable = () => cache.reusable({ files: { [dag]: entry } } as unknown as RunState, dag, 'hash-of-a', identity);
    expect(await reusable()).toBeDefined();
    // Names no import looked up, and files beside a distribution's metadata: nothing changes.
    write('dags/b.py', 'another DAG');
    write('dags/helpers_old2.py', '');
    write('site/loose.py', '');
    expect(await reusable()).toBeDefined();
    // A module by a looked-up name, in any form: the verdict may change.
    for (const name of ['helpers.py', 'helpers', 'common.cpython-311-x86_64-linux-gnu.so']) {
      write(`dags/${name}${name === 'helpers' ? '/__init__.py' : ''}`, '');
      expect(await reusable()).toBeUndefined();
      fs.rmSync(path.join(dir, 'dags', name), { recursive: true });
      expect(await reusable()).toBeDefined();
    }
    // A new distribution where importlib.metadata looked.
    write('site/other-2.0.dist-info/METADATA', '');
    expect(await reusable()).toBeUndefined();
  });

  it('reads a corrupt state file as no state', async () => {
    const cache = new ParseCache(path.join(dir, 'cache'), dir, 'key');
    fs.mkdirSync(path.join(dir, 'cache', 'runs', 'key'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'cache', 'runs', 'key', 'state.json'), '{"format": 1, "tree');
    expect(await cache.loadState()).toBeUndefined();
  });
});
