import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuildContext, createContextFilter, listBuildContext, parseDockerignore } from '../../../src/image/context.js';
import { UserError } from '../../../src/errors.js';
import { dockerignoreCases, writeCaseProject } from './dockerignore-cases.js';

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-context-unit-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function caseDir(name: string): Promise<string> {
  const dir = path.join(root, name.replace(/[^a-z0-9]+/gi, '-'));
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  content: string;
}

async function readTar(stream: NodeJS.ReadableStream): Promise<TarEntry[]> {
  const extract = tarStream.extract();
  const entries: TarEntry[] = [];
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, body, next) => {
      const chunks: Buffer[] = [];
      body.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      body.on('end', () => {
        entries.push({
          name: header.name,
          type: header.type,
          mode: header.mode,
          uid: header.uid,
          gid: header.gid,
          content: Buffer.concat(chunks).toString('utf8'),
        });
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    stream.on('error', reject);
    stream.pipe(extract as unknown as NodeJS.WritableStream);
  });
  return entries;
}

describe('build context filtering (.dockerignore semantics)', () => {
  it.each(dockerignoreCases)('$name', async (testCase) => {
    const dir = await caseDir(testCase.name);
    await writeCaseProject(dir, testCase);
    const names = await listBuildContext(dir, { excludeDags: testCase.excludeDags, dockerfile: testCase.dockerfile });
    const files = names.filter((n) => !n.endsWith('/')).sort();
    expect(files).toEqual([...testCase.expected].sort());
  });
});

describe('parseDockerignore', () => {
  it('reads lines as Docker does', () => {
    expect(parseDockerignore('\uFEFF# comment\n  ./a/../b/  \n!/c\n\r\n #not-a-comment\n!  d  \n')).toEqual([
      { pattern: 'b', exception: false },
      { pattern: 'c', exception: true },
      { pattern: '#not-a-comment', exception: false },
      { pattern: 'd', exception: true },
    ]);
  });
});

describe('createContextFilter', () => {
  it('walks an excluded directory only when an exception names something inside it', () => {
    const filter = createContextFilter(parseDockerignore('foo\nbar\n!bar/keep\n'));
    expect(filter.decide('foo', true)).toBe('skip');
    expect(filter.decide('bar', true)).toBe('descend');
    expect(filter.decide('bar/keep', false)).toBe('send');
    expect(filter.decide('bar/other', false)).toBe('skip');
    expect(filter.decide('baz', true)).toBe('send');
  });

  it('skips dags/ and everything in it when DAGs are deployed separately', () => {
    const filter = createContextFilter([], { excludeDags: true });
    expect(filter.decide('dags', true)).toBe('skip');
    expect(filter.decide('dags/a.py', false)).toBe('skip');
    expect(filter.decide('dagsx', false)).toBe('send');
  });
});

describe('createBuildContext', () => {
  it('sends entries owned by root with their permission bits and content unchanged, and no root entry', async () => {
    const dir = await caseDir('modes');
    await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    await fs.mkdir(path.join(dir, 'bin'));
    await fs.writeFile(path.join(dir, 'bin', 'run.sh'), '#!/bin/sh\necho hi\n');
    await fs.chmod(path.join(dir, 'bin', 'run.sh'), 0o775);
    await fs.writeFile(path.join(dir, 'private.txt'), 'x');
    await fs.chmod(path.join(dir, 'private.txt'), 0o600);
    await fs.symlink('bin/run.sh', path.join(dir, 'link'));

    const entries = await readTar(await createBuildContext(dir));
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect([...byName.keys()].sort()).toEqual(['Dockerfile', 'bin', 'bin/run.sh', 'link', 'private.txt']);
    expect(byName.get('bin/run.sh')).toMatchObject({ type: 'file', uid: 0, gid: 0, content: '#!/bin/sh\necho hi\n' });
    expect(byName.get('bin/run.sh')!.mode & 0o777).toBe(0o775);
    expect(byName.get('private.txt')!.mode & 0o777).toBe(0o600);
    expect(byName.get('link')!.type).toBe('symlink');
  });

  it('never writes to the project, .dockerignore included', async () => {
    const dir = await caseDir('read-only');
    const testCase = dockerignoreCases.find((c) => c.name.startsWith('DAG-only deploys leave dags/ out even'))!;
    await writeCaseProject(dir, testCase);
    const snapshot = async () => {
      const out: string[] = [];
      for (const entry of await fs.readdir(dir, { recursive: true })) {
        const file = path.join(dir, entry);
        const stat = await fs.lstat(file);
        const hash = stat.isFile()
          ? createHash('sha256')
              .update(await fs.readFile(file))
              .digest('hex')
          : 'dir';
        out.push(`${entry} ${hash} ${stat.mtimeMs} ${stat.mode}`);
      }
      return out.sort();
    };
    const before = await snapshot();
    await listBuildContext(dir, { excludeDags: true });
    // A consumer that gives up half-way (an interrupted build) must not leave anything behind either.
    const stream = await createBuildContext(dir, { excludeDags: true });
    stream.once('data', () => stream.destroy());
    await new Promise((resolve) => stream.once('close', resolve));
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a project without a Dockerfile, naming where it looked', async () => {
    const dir = await caseDir('no-dockerfile');
    await expect(createBuildContext(dir)).rejects.toThrow(UserError);
    await expect(createBuildContext(dir)).rejects.toThrow(path.join(dir, 'Dockerfile'));
  });

  it('refuses a Dockerfile outside the project', async () => {
    const dir = await caseDir('outside');
    await expect(createBuildContext(dir, { dockerfile: '../elsewhere/Dockerfile' })).rejects.toThrow(/outside the project/);
  });

  it('turns a file it cannot send (a FIFO) into a UserError on the stream', async () => {
    const dir = await caseDir('fifo');
    await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    expect(spawnSync('mkfifo', [path.join(dir, 'pipe')]).status).toBe(0);
    await expect(readTar(await createBuildContext(dir))).rejects.toThrow(/Could not read the project directory for the build: .*pipe/);
  });
});
