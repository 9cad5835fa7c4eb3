import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { TarWriter, tarPadding, type TarEntry } from '../../../src/util/tar.js';
import { tarContentDigest } from '../../../src/deploy/kernel/digest.js';

/** What tar-stream's packer writes for the same entries: the bytes the bundle had before our writer. */
async function tarStreamBytes(entries: [TarEntry, Buffer | undefined][]): Promise<Buffer> {
  const packer = pack();
  const chunks: Buffer[] = [];
  packer.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    packer.on('end', resolve);
    packer.on('error', reject);
  });
  for (const [entry, data] of entries) {
    if (data) packer.entry({ ...entry }, data);
    else packer.entry({ ...entry });
  }
  packer.finalize();
  await ended;
  return Buffer.concat(chunks);
}

const when = new Date('2026-03-04T05:06:07.890Z');
const file = (name: string, content: string, mode = 0o100644, extra: Partial<TarEntry> = {}): [TarEntry, Buffer] => {
  const data = Buffer.from(content);
  return [{ name, type: 'file', size: data.length, mode, mtime: when, uid: 1000, gid: 1000, ...extra }, data];
};
const link = (name: string, linkname: string): [TarEntry, undefined] => [
  { name, type: 'symlink', size: 0, mode: 0o120777, mtime: when, uid: 0, gid: 0, linkname },
  undefined,
];

const dir = (name: string): [TarEntry, undefined] => [{ name, type: 'directory', size: 0, mode: 0o40755, mtime: when, uid: 0, gid: 0 }, undefined];

const CASES: [TarEntry, Buffer | undefined][] = [
  file('dags/a.py', 'dag = 1\n'),
  file('dags/empty.py', ''),
  file('dags/exactly-512.py', 'x'.repeat(512)),
  file('dags/run.sh', '#!/bin/sh\n', 0o100755),
  // A name of exactly 100 bytes, one that needs the ustar prefix, one too long even for that, and non-ASCII ones.
  file(`dags/${'n'.repeat(95)}`, 'hundred\n'),
  file(`dags/${'folder/'.repeat(20)}dag.py`, 'prefixed\n'),
  file(`dags/${'x'.repeat(180)}.py`, 'pax\n'),
  file('dags/café_dag.py', 'é\n'),
  file('dags/日本/dag.py', 'pass\n'),
  // A PAX record whose length crosses a power of ten (its own digits count towards it).
  file(`dags/${'p/'.repeat(45)}${'q'.repeat(3)}é.py`, 'ten\n'),
  file('dags/big-uid.py', 'uid\n', 0o100600, { uid: 70_000_000, gid: 5 }),
  link('dags/link.py', 'a.py'),
  link('dags/far', `${'../'.repeat(10)}${'t'.repeat(80)}`),
  link('dags/unicode-link.py', 'café_dag.py'),
  // Directories (the build context sends them): a short name, one needing the prefix, and a non-ASCII one.
  dir('include'),
  dir(`include/${'deep/'.repeat(25)}end`),
  dir('include/données'),
];

describe('TarWriter', () => {
  it("writes tar-stream's bytes for the same entries (ustar, prefix, PAX names and targets, empty and block-sized files)", async () => {
    const writer = new TarWriter();
    for (const [entry, data] of CASES) writer.entry(entry, data);
    const { tar } = writer.finalize();
    const expected = await tarStreamBytes(CASES);
    expect(tar.length).toBe(expected.length);
    expect(tar.equals(expected)).toBe(true);
  });

  it('writes the same bytes when a caller sends a large file itself after fileHeader and tarPadding', () => {
    const big = file('include/big.bin', 'z'.repeat(70_001));
    const whole = new TarWriter({ digest: false });
    whole.entry(...big);
    const split = new TarWriter({ digest: false });
    split.fileHeader(big[0], big[1].length);
    const parts = [split.take(), big[1], tarPadding(big[1].length)!];
    const finished = split.finalize();
    expect(Buffer.concat([...parts, finished.tar]).equals(whole.finalize().tar)).toBe(true);
    expect(finished).toMatchObject({ files: 1, contentBytes: 70_001, contentDigest: '' });
    expect(() => new TarWriter().fileHeader(big[0], 1)).toThrow(/without a digest/);
  });

  it('gives the content digest that reading the tar back gives, with the files and bytes', async () => {
    const writer = new TarWriter();
    for (const [entry, data] of CASES) writer.entry(entry, data);
    const written = writer.finalize();
    const readBack = await tarContentDigest(Readable.from([written.tar]));
    expect(written.contentDigest).toBe(readBack.digest);
    expect(written.files).toBe(readBack.files);
    expect(written.contentBytes).toBe(readBack.bytes);
  });

  it('a different mtime or owner keeps the content digest; a different executable bit or byte changes it', () => {
    const digest = (entries: [TarEntry, Buffer | undefined][]) => {
      const writer = new TarWriter();
      for (const [entry, data] of entries) writer.entry(entry, data);
      return writer.finalize().contentDigest;
    };
    const base = digest([file('dags/a.py', 'x')]);
    expect(digest([file('dags/a.py', 'x', 0o100644, { mtime: new Date(0), uid: 1, gid: 2 })])).toBe(base);
    expect(digest([file('dags/a.py', 'x', 0o100755)])).not.toBe(base);
    expect(digest([file('dags/a.py', 'y')])).not.toBe(base);
  });
});
