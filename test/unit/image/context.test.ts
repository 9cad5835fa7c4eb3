import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tarFs from 'tar-fs';
import {
  createBuildContext,
  createContextFilter,
  listBuildContext,
  parseDockerignore,
  snapshotBuildContext,
  type ContextFilter,
} from '../../../src/image/context.js';
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

  it('names the build files it sends although .dockerignore lists them', () => {
    expect(createContextFilter(parseDockerignore('*.md\n')).keptForBuilder).toEqual([]);
    expect(createContextFilter(parseDockerignore('Dockerfile\n.dockerignore\n')).keptForBuilder).toEqual(['.dockerignore', 'Dockerfile']);
    expect(createContextFilter(parseDockerignore('docker\n'), { dockerfile: 'docker/Dockerfile.prod' }).keptForBuilder).toEqual(['docker/Dockerfile.prod']);
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

  it('refuses a file it cannot send (a FIFO) before anything is sent, naming it and the fix', async () => {
    const dir = await caseDir('fifo');
    await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    expect(spawnSync('mkfifo', [path.join(dir, 'pipe')]).status).toBe(0);
    const error = (await createBuildContext(dir).catch((e: unknown) => e)) as UserError;
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      `Could not read the project directory for the build: ${path.join(dir, 'pipe')} is a named pipe, which a build context cannot hold.`,
    );
    expect(error.nextStep).toBe('Move it out of the project, or list it in .dockerignore.');
    // Left out by .dockerignore, it is never looked at.
    await fs.writeFile(path.join(dir, '.dockerignore'), 'pipe\n');
    expect((await listBuildContext(dir)).sort()).toEqual(['.dockerignore', 'Dockerfile']);
  });

  it("writes each entry's header and bytes as tar-fs packed them (the writer it replaced), folders before their contents", async () => {
    const dir = await caseDir('as-tar-fs');
    await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    await fs.mkdir(path.join(dir, 'include', 'données', 'deep'), { recursive: true });
    await fs.writeFile(path.join(dir, 'include', 'données', 'deep', 'q.sql'), 'select 1;\n');
    await fs.writeFile(path.join(dir, 'include', `${'long-name-'.repeat(12)}.txt`), 'pax\n');
    await fs.writeFile(path.join(dir, 'include', 'block.bin'), Buffer.alloc(1024, 7));
    await fs.writeFile(path.join(dir, 'run.sh'), '#!/bin/sh\n');
    await fs.chmod(path.join(dir, 'run.sh'), 0o755);
    await fs.writeFile(path.join(dir, 'empty'), '');
    await fs.symlink('include/block.bin', path.join(dir, 'link'));
    await fs.mkdir(path.join(dir, 'plugins'));

    const ours = await blocksByName(await createBuildContext(dir));
    const packed = tarFs.pack(dir, {
      ignore: (name: string) => name === dir,
      map: (header: tarFs.Headers) => ({ ...header, uid: 0, gid: 0, uname: '', gname: '' }),
      umask: 0,
      sort: true,
    } as tarFs.PackOptions);
    const theirs = await blocksByName(packed as unknown as NodeJS.ReadableStream);
    theirs.delete('.');
    expect([...ours.keys()]).toEqual([
      'Dockerfile',
      'empty',
      'include',
      'include/block.bin',
      'include/données',
      'include/données/deep',
      'include/données/deep/q.sql',
      `include/${'long-name-'.repeat(12)}.txt`,
      'link',
      'plugins',
      'run.sh',
    ]);
    expect(new Map([...ours].sort())).toEqual(new Map([...theirs].sort()));
  });

  it('sends a file too large to hold from disk, and refuses one that changed size before it was sent', async () => {
    const dir = await caseDir('large');
    await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    const big = Buffer.alloc(5 * 1024 * 1024 + 3, 'ab');
    await fs.writeFile(path.join(dir, 'big.bin'), big);
    const filter = createContextFilter([]);
    const snapshot = await snapshotBuildContext(dir, filter);
    const held = snapshot.entries.find((e) => e.name === 'big.bin')!;
    expect(held.size).toBe(big.length);
    expect(held.data).toBeUndefined();
    expect(snapshot.bytes).toBe(big.length + 'FROM scratch\n'.length);
    const entries = await readTar(await createBuildContext(dir, {}, snapshot));
    expect(entries.find((e) => e.name === 'big.bin')!.content).toBe(big.toString('utf8'));

    await fs.truncate(path.join(dir, 'big.bin'), 100);
    await expect(readTar(await createBuildContext(dir, {}, snapshot))).rejects.toThrow(
      `Could not read the project directory for the build: ${path.join(dir, 'big.bin')} changed while it was being read.`,
    );
  });

  it('reads a file that grew after the folder was listed whole, at the size it has when opened', async () => {
    const dir = await caseDir('grows');
    await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    await fs.writeFile(path.join(dir, 'log.txt'), 'first\n');
    // The filter is asked about log.txt a second time between its lstat and its open: it grows right then.
    const grows: ContextFilter = {
      keptForBuilder: [],
      decide: (name, isDirectory) => {
        if (name !== 'log.txt') return 'send';
        if (isDirectory) return 'descend';
        appendFileSync(path.join(dir, 'log.txt'), 'second\n');
        return 'send';
      },
    };
    const snapshot = await snapshotBuildContext(dir, grows);
    const log = snapshot.entries.find((e) => e.name === 'log.txt')!;
    expect(log.data?.toString()).toBe('first\nsecond\n');
    expect(log.size).toBe('first\nsecond\n'.length);
    expect((await readTar(await createBuildContext(dir, {}, snapshot))).find((e) => e.name === 'log.txt')!.content).toBe('first\nsecond\n');
  });

  it("builds from the snapshot it is given: the bytes the plan's digest describes, whatever changed since", async () => {
    const dir = await caseDir('snapshot');
    await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    await fs.writeFile(path.join(dir, 'a.txt'), 'first\n');
    const snapshot = await snapshotBuildContext(dir, createContextFilter([]));
    await fs.writeFile(path.join(dir, 'a.txt'), 'second\n');
    await fs.writeFile(path.join(dir, 'b.txt'), 'new\n');
    expect((await readTar(await createBuildContext(dir, {}, snapshot))).map((e) => `${e.name}=${e.content}`)).toEqual([
      'Dockerfile=FROM scratch\n',
      'a.txt=first\n',
    ]);
    const fresh = await snapshotBuildContext(dir, createContextFilter([]));
    expect(fresh.digest).not.toBe(snapshot.digest);
    expect((await readTar(await createBuildContext(dir))).map((e) => e.name)).toEqual(['Dockerfile', 'a.txt', 'b.txt']);
  });
});

/** Each entry's raw header block(s) and content, by name, in the order the tar holds them. */
async function blocksByName(stream: NodeJS.ReadableStream): Promise<Map<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const tar = Buffer.concat(chunks);
  const byName = new Map<string, string>();
  const extract = tarStream.extract();
  let offset = 0;
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, body, next) => {
      const parts: Buffer[] = [];
      body.on('data', (c: unknown) => {
        parts.push(c as Buffer);
      });
      body.on('end', () => {
        // The header blocks end where the content starts: find this entry's by walking the raw tar alongside.
        const content = Buffer.concat(parts);
        const start = offset;
        while (
          tar
            .subarray(offset, offset + 512)
            .toString('latin1')
            .indexOf('\0') === 0
        )
          offset += 512;
        let end = offset;
        for (;;) {
          const size = parseInt(tar.subarray(end + 124, end + 136).toString('latin1'), 8) || 0;
          const typeflag = String.fromCharCode(tar[end + 156]!);
          end += 512 + Math.ceil(size / 512) * 512;
          if (typeflag !== 'x') break;
        }
        byName.set(header.name, tar.subarray(start, end).toString('base64') + ':' + content.toString('base64'));
        offset = end;
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    extract.end(tar);
  });
  return byName;
}
