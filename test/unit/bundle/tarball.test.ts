import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDagBundle } from '../../../src/bundle/tarball.js';
import { InterruptedError, UserError } from '../../../src/errors.js';
import { dagBundleDigest } from '../../../src/deploy/kernel/digest.js';

interface Entry {
  name: string;
  type: string;
  mode: number;
  mtime: number;
  linkname?: string;
  content: string;
}

/** Lists a bundle with tar-stream, independently of how it was written. */
async function list(data: Buffer): Promise<Entry[]> {
  const entries: Entry[] = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c) => {
        chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        entries.push({
          name: header.name,
          type: header.type ?? 'file',
          mode: (header.mode ?? 0) & 0o7777,
          mtime: Math.floor((header.mtime?.getTime() ?? 0) / 1000),
          linkname: header.linkname ?? undefined,
          content: Buffer.concat(chunks).toString('utf8'),
        });
        next();
      });
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(gunzipSync(data));
  await done;
  return entries;
}

async function expectUserError(promise: Promise<unknown>, pattern: RegExp): Promise<UserError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  expect((error as UserError).message).toMatch(pattern);
  return error as UserError;
}

let project: string;
let dags: string;

beforeEach(async () => {
  project = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-bundle-'));
  dags = path.join(project, 'dags');
  await fs.mkdir(dags);
});
afterEach(async () => {
  await fs.rm(project, { recursive: true, force: true });
});

async function write(rel: string, content: string, mode?: number): Promise<void> {
  const file = path.join(dags, rel);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
  if (mode !== undefined) await fs.chmod(file, mode);
}

describe('createDagBundle contents', () => {
  it('stores files only, sorted, under dags/, with their content, mode and mtime', async () => {
    await write('b_dag.py', 'print("b")\n');
    await write('a_dag.py', 'print("a")\n', 0o755);
    await write('utils/helpers.py', 'X = 1\n');
    await write('utils/deep/er/data.json', '{"k": 1}\n');
    await write('.airflowignore', 'utils/deep\n');
    await fs.mkdir(path.join(dags, 'empty-folder'));
    const fixed = new Date('2024-05-06T07:08:09Z');
    await fs.utimes(path.join(dags, 'a_dag.py'), fixed, fixed);

    const bundle = await createDagBundle({ sourceDir: dags });
    const entries = await list(bundle.data);

    expect(entries.map((e) => e.name)).toEqual([
      'dags/.airflowignore',
      'dags/a_dag.py',
      'dags/b_dag.py',
      'dags/utils/deep/er/data.json',
      'dags/utils/helpers.py',
    ]);
    expect(entries.every((e) => e.type === 'file')).toBe(true);
    const a = entries.find((e) => e.name === 'dags/a_dag.py')!;
    expect(a.content).toBe('print("a")\n');
    expect(a.mode).toBe(0o755);
    expect(a.mtime).toBe(fixed.getTime() / 1000);
    expect(entries.find((e) => e.name === 'dags/utils/deep/er/data.json')!.content).toBe('{"k": 1}\n');
    expect(bundle.fileCount).toBe(5);
    expect(bundle.dagFileCount).toBe(3);
    expect(bundle.bytes).toBe(bundle.data.length);
    expect(bundle.sha256).toBe(createHash('sha256').update(bundle.data).digest('hex'));
  });

  it('packs a folder of many files (compressed while it is read) into one gzip stream with every file, in order', async () => {
    const names = Array.from({ length: 700 }, (_, i) => `dag_${String(i).padStart(3, '0')}.py`);
    for (const name of names) await write(name, `# ${name}\n${'x = 1\n'.repeat(Number(name.slice(4, 7)) % 40)}`);
    const bundle = await createDagBundle({ sourceDir: dags });
    const entries = await list(bundle.data);
    expect(entries.map((e) => e.name)).toEqual(names.map((n) => `dags/${n}`));
    expect(entries[123]!.content).toBe(`# dag_123.py\n${'x = 1\n'.repeat(3)}`);
    // One gzip member: what the one-shot call gives for the same tar.
    expect(bundle.data.equals(gzipSync(gunzipSync(bundle.data)))).toBe(true);
    expect(bundle.dagFileCount).toBe(700);
    expect(bundle.contentDigest).toBe((await dagBundleDigest(bundle.data)).digest);
  });

  it('can be read by GNU tar', async () => {
    await write('dag.py', 'x = 1\n');
    await write('sub/other.py', 'y = 2\n');
    const bundle = await createDagBundle({ sourceDir: dags });
    const archive = path.join(os.tmpdir(), `astro-bundle-${process.pid}.tgz`);
    await fs.writeFile(archive, bundle.data);
    try {
      const listing = execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).trim().split('\n');
      expect(listing).toEqual(['dags/dag.py', 'dags/sub/other.py']);
    } finally {
      await fs.rm(archive, { force: true });
    }
  });

  it('leaves out .git folders and .git files at any depth, and nothing else that starts with a dot', async () => {
    await write('.git/HEAD', 'ref: refs/heads/main\n');
    await write('.git/objects/ab/cdef', 'blob');
    await write('vendored/lib/.git/config', '[core]\n');
    await write('submodule/.git', 'gitdir: ../.git/modules/submodule\n');
    await write('submodule/dag.py', 'pass\n');
    await write('.gitignore', '*.pyc\n');
    await write('.github/workflow.yml', 'on: push\n');

    const entries = await list((await createDagBundle({ sourceDir: dags })).data);
    expect(entries.map((e) => e.name)).toEqual(['dags/.github/workflow.yml', 'dags/.gitignore', 'dags/submodule/dag.py']);
  });

  it('uses the prefix it is given, or none', async () => {
    await write('x.py', 'pass\n');
    await write('pkg/y.py', 'pass\n');
    expect((await list((await createDagBundle({ sourceDir: dags, prefix: '' })).data)).map((e) => e.name)).toEqual(['pkg/y.py', 'x.py']);
    expect((await list((await createDagBundle({ sourceDir: dags, prefix: 'my_dags/' })).data)).map((e) => e.name)).toEqual([
      'my_dags/pkg/y.py',
      'my_dags/x.py',
    ]);
    await expectUserError(createDagBundle({ sourceDir: dags, prefix: '../escape' }), /not a plain folder name/);
  });

  it('carries generated files under the prefix, sorted in, replacing a folder file of the same path, without counting them as DAGs', async () => {
    await write('a_dag.py', 'pass\n');
    await write('z.py', 'user version\n');
    const generated = [
      { rel: 'm_generated.py', content: Buffer.from('generated\n') },
      { rel: 'z.py', content: Buffer.from('generated z\n') },
    ];
    const before = await fs.readdir(dags);
    const bundle = await createDagBundle({ sourceDir: dags, generated });
    const entries = await list(bundle.data);
    expect(entries.map((e) => e.name)).toEqual(['dags/a_dag.py', 'dags/m_generated.py', 'dags/z.py']);
    expect(entries.find((e) => e.name === 'dags/m_generated.py')).toMatchObject({ type: 'file', mode: 0o644, content: 'generated\n' });
    expect(entries.find((e) => e.name === 'dags/z.py')!.content).toBe('generated z\n');
    expect(bundle.fileCount).toBe(3);
    // The folder's own DAG files decide "no DAGs found": a, z (the user's z.py is still a DAG file of theirs).
    expect(bundle.dagFileCount).toBe(2);
    expect(await fs.readdir(dags)).toEqual(before);
    expect((await list((await createDagBundle({ sourceDir: dags, prefix: '', generated })).data)).map((e) => e.name)).toContain('m_generated.py');
  });

  it('an empty folder with a generated file still has no DAGs of its own', async () => {
    const bundle = await createDagBundle({ sourceDir: dags, generated: [{ rel: 'gen.py', content: Buffer.from('x = 1\n') }] });
    expect((await list(bundle.data)).map((e) => e.name)).toEqual(['dags/gen.py']);
    expect(bundle.dagFileCount).toBe(0);
  });

  it('bundles an empty folder as a valid empty archive with no DAGs', async () => {
    const bundle = await createDagBundle({ sourceDir: dags });
    expect(await list(bundle.data)).toEqual([]);
    expect(bundle.fileCount).toBe(0);
    expect(bundle.dagFileCount).toBe(0);
  });

  it('counts DAG files with the unanchored .py pattern of the reference, including its loose matches', async () => {
    await write('dag.py', '');
    await write('compiled.pyc', '');
    await write('happy.txt', ''); // "ppy" matches ".py"
    await write('README.md', '');
    await write('data.csv', '');
    const bundle = await createDagBundle({ sourceDir: dags });
    expect(bundle.fileCount).toBe(5);
    expect(bundle.dagFileCount).toBe(3);
  });

  it('is byte-identical when built twice from the same folder', async () => {
    for (let i = 0; i < 20; i++) await write(`d${i % 3}/dag_${i}.py`, `dag = ${i}\n`);
    const one = await createDagBundle({ sourceDir: dags });
    const two = await createDagBundle({ sourceDir: dags });
    expect(two.sha256).toBe(one.sha256);
    expect(two.data.equals(one.data)).toBe(true);
  });

  it('carries the content digest the plan would read back from the tar, files and links included', async () => {
    await write('a.py', 'dag = 1\n');
    await write('bin/run.sh', '#!/bin/sh\n', 0o755);
    await write(`${'deep/'.repeat(30)}dag.py`, 'pass\n');
    await fs.symlink('a.py', path.join(dags, 'alias.py'));
    const bundle = await createDagBundle({ sourceDir: dags });
    expect(bundle.contentDigest).toBe((await dagBundleDigest(bundle.data)).digest);
  });

  it('keeps UTF-8 names and long paths intact', async () => {
    const long = `${'nested_folder_name/'.repeat(8)}a_dag_with_a_rather_long_file_name_for_the_ustar_limit.py`;
    await write('café_dag.py', 'é\n');
    await write('日本/dag.py', 'pass\n');
    await write(long, 'pass\n');
    const names = (await list((await createDagBundle({ sourceDir: dags })).data)).map((e) => e.name);
    expect(`dags/${long}`.length).toBeGreaterThan(100);
    expect(names).toEqual([`dags/café_dag.py`, `dags/${long}`, 'dags/日本/dag.py']);
  });

  it('never writes into the project', async () => {
    await write('dag.py', 'pass\n');
    await fs.writeFile(path.join(project, 'Dockerfile'), 'FROM x\n');
    const snapshot = async () => {
      const out: string[] = [];
      for (const entry of await fs.readdir(project, { recursive: true })) {
        const stat = await fs.lstat(path.join(project, entry));
        out.push(`${entry} ${stat.mtimeMs} ${stat.size}`);
      }
      return out.sort();
    };
    const before = await snapshot();
    await createDagBundle({ sourceDir: dags });
    expect(await snapshot()).toEqual(before);
  });

  it('follows a DAGs folder that is itself a symlink', async () => {
    const real = path.join(project, 'elsewhere');
    await fs.mkdir(real);
    await fs.writeFile(path.join(real, 'dag.py'), 'pass\n');
    const linked = path.join(project, 'linked-dags');
    await fs.symlink(real, linked);
    expect((await list((await createDagBundle({ sourceDir: linked })).data)).map((e) => e.name)).toEqual(['dags/dag.py']);
  });
});

describe('createDagBundle symlinks', () => {
  it('stores links that stay inside as symlink entries, relative to their folder, without following them', async () => {
    await write('common/shared.py', 'SHARED = 1\n');
    await fs.symlink('common/shared.py', path.join(dags, 'relative_link.py'));
    await fs.mkdir(path.join(dags, 'sub'));
    await fs.symlink(path.join(dags, 'common', 'shared.py'), path.join(dags, 'sub', 'absolute_link.py'));
    await fs.symlink('../../dags/common/shared.py', path.join(dags, 'sub', 'roundabout_link.py'));
    await fs.symlink('common', path.join(dags, 'folder_link'));

    const entries = await list((await createDagBundle({ sourceDir: dags })).data);
    expect(entries.map((e) => [e.name, e.type, e.linkname ?? null])).toEqual([
      ['dags/common/shared.py', 'file', null],
      ['dags/folder_link', 'symlink', 'common'],
      ['dags/relative_link.py', 'symlink', 'common/shared.py'],
      ['dags/sub/absolute_link.py', 'symlink', '../common/shared.py'],
      ['dags/sub/roundabout_link.py', 'symlink', '../common/shared.py'],
    ]);
  });

  it('refuses a link that leaves the folder, naming it and its target', async () => {
    await fs.writeFile(path.join(project, 'secret.txt'), 'outside\n');
    await fs.symlink('../secret.txt', path.join(dags, 'leak.py'));
    const error = await expectUserError(
      createDagBundle({ sourceDir: dags }),
      /symlink .*leak\.py points to .*secret\.txt which is outside the bundle directory/,
    );
    expect(error.message).toContain(path.join(project, 'secret.txt'));
  });

  it('keeps a link into a folder whose name starts with two dots (inside the folder, not above it)', async () => {
    await write('..data/shared.py', 'X = 1\n');
    await fs.symlink('..data/shared.py', path.join(dags, 'link.py'));
    const entries = await list((await createDagBundle({ sourceDir: dags })).data);
    expect(entries.map((e) => [e.name, e.type, e.linkname ?? null])).toEqual([
      ['dags/..data/shared.py', 'file', null],
      ['dags/link.py', 'symlink', '..data/shared.py'],
    ]);
  });

  it('refuses a dangling link', async () => {
    await fs.symlink('missing.py', path.join(dags, 'dangling.py'));
    await expectUserError(createDagBundle({ sourceDir: dags }), /symlink .*dangling\.py points to missing\.py, which does not exist/);
  });

  it('refuses a symlink loop', async () => {
    await fs.symlink('b', path.join(dags, 'a'));
    await fs.symlink('a', path.join(dags, 'b'));
    await expectUserError(createDagBundle({ sourceDir: dags }), /symlink .*\/a is part of a symlink loop/);
  });

  it('refuses a link to a folder that contains it, which loops for anything that follows links', async () => {
    await write('sub/dag.py', 'pass\n');
    await fs.symlink('..', path.join(dags, 'sub', 'up'));
    await expectUserError(createDagBundle({ sourceDir: dags }), /symlink .*sub\/up points to \.\., a folder that contains the link/);
  });
});

describe('createDagBundle folder links that lead into each other', () => {
  it('refuses links that loop together, naming them', async () => {
    await write('a/dag_a.py', 'pass\n');
    await write('b/dag_b.py', 'pass\n');
    await fs.symlink('../b', path.join(dags, 'a', 'to_b'));
    await fs.symlink('../a', path.join(dags, 'b', 'to_a'));
    await expectUserError(createDagBundle({ sourceDir: dags }), /the symlinks .*a\/to_b -> \.\.\/b, .*b\/to_a -> \.\.\/a lead into each other/);
  });

  it('accepts several links to the same folder and chains that end', async () => {
    await write('shared/lib.py', 'pass\n');
    await write('a/dag_a.py', 'pass\n');
    await fs.symlink('../shared', path.join(dags, 'a', 'shared'));
    await fs.symlink('shared', path.join(dags, 'shared_again'));
    await fs.symlink('a', path.join(dags, 'to_a'));
    const entries = await list((await createDagBundle({ sourceDir: dags })).data);
    expect(entries.filter((e) => e.type === 'symlink').map((e) => [e.name, e.linkname])).toEqual([
      ['dags/a/shared', '../shared'],
      ['dags/shared_again', 'shared'],
      ['dags/to_a', 'a'],
    ]);
  });
});

describe('createDagBundle refusals', () => {
  it('refuses a named pipe, naming it', async () => {
    await write('dag.py', 'pass\n');
    execFileSync('mkfifo', [path.join(dags, 'pipe.py')]);
    const error = await expectUserError(createDagBundle({ sourceDir: dags }), /pipe\.py: it is a named pipe \(FIFO\), not a regular file/);
    expect(error.nextStep).toMatch(/Move it out/);
  });

  it('refuses a socket, naming it', async () => {
    const socketPath = path.join(dags, 'agent.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      await expectUserError(createDagBundle({ sourceDir: dags }), /agent\.sock: it is a socket/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses a file name that is not valid UTF-8, showing its bytes', async () => {
    await fs.writeFile(Buffer.concat([Buffer.from(`${dags}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.py')]), 'pass\n');
    await expectUserError(createDagBundle({ sourceDir: dags }), /bad-\\xff\\xfe\.py is not valid UTF-8/);
  });

  it('refuses a missing folder and a path that is a file', async () => {
    const missing = await expectUserError(createDagBundle({ sourceDir: path.join(project, 'nope') }), /does not exist/);
    expect(missing.nextStep).toMatch(/--dags-path/);
    await fs.writeFile(path.join(project, 'file'), '');
    await expectUserError(createDagBundle({ sourceDir: path.join(project, 'file') }), /is not a folder/);
  });

  it('refuses a folder over the size guard', async () => {
    await write('a.py', 'x'.repeat(600));
    await write('b.py', 'y'.repeat(600));
    const error = await expectUserError(
      createDagBundle({ sourceDir: dags, maxSourceBytes: 1000 }),
      /holds more than 1000 bytes of files, too much for a DAG bundle/,
    );
    expect(error.nextStep).toMatch(/include\//);
    await expect(createDagBundle({ sourceDir: dags, maxSourceBytes: 1200 })).resolves.toMatchObject({ fileCount: 2 });
  });

  it('refuses an oversized file by its size, without reading it', async () => {
    // 3 GiB, sparse: reading it would fail differently (Node refuses to read files over 2 GiB into one buffer).
    const handle = await fs.open(path.join(dags, 'model.bin'), 'w');
    await handle.truncate(3 * 1024 ** 3);
    await handle.close();
    await expectUserError(createDagBundle({ sourceDir: dags }), /holds more than 256 MiB of files, too much for a DAG bundle/);
  });

  it('stops with an interruption when the signal is aborted', async () => {
    await write('dag.py', 'pass\n');
    const controller = new AbortController();
    controller.abort('SIGTERM');
    const error = await createDagBundle({ sourceDir: dags, signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect((error as InterruptedError).signal).toBe('SIGTERM');
  });

  // Tests run as root, which reads any file; a child process dropped to `nobody` meets a real permission error.
  it('names a file it cannot read (as an unprivileged user)', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test drops privileges and must run as root');
    await fs.chmod(project, 0o755);
    await fs.chmod(dags, 0o755);
    await write('ok.py', 'pass\n', 0o644);
    await write('locked.py', 'secret\n', 0o000);
    const script = path.join(project, 'run.mts');
    await fs.writeFile(
      script,
      [
        `import { createDagBundle } from ${JSON.stringify(path.resolve('src/bundle/tarball.ts'))};`,
        `try { await createDagBundle({ sourceDir: ${JSON.stringify(dags)} }); console.log(JSON.stringify({ ok: true })); }`,
        `catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message, nextStep: e.nextStep })); }`,
      ].join('\n'),
    );
    await fs.chmod(script, 0o644);
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd(), uid: 65534, gid: 65534, encoding: 'utf8', timeout: 60_000 });
    expect(child.stderr).toBe('');
    const result = JSON.parse(child.stdout.trim().split('\n').pop()!) as { name: string; message: string; nextStep: string };
    expect(result.name).toBe('UserError');
    expect(result.message).toBe(`Cannot read ${path.join(dags, 'locked.py')}: permission denied (EACCES).`);
    expect(result.nextStep).toMatch(/permissions/);
  });
});
