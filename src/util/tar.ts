/**
 * A tar writer for the DAG bundle and the image's build context: plain buffers in, buffers out, no streams. It writes
 * the bytes tar-stream's packer writes for the same entries (ustar headers, a PAX header for a name or link target
 * ustar cannot hold) — its test checks that byte for byte — and, for the bundle, hashes each entry as it goes, so
 * the bundle's content digest needs no second pass over the tar.
 *
 * Why not tar-stream itself (or tar-fs on top of it): it runs every entry through its own streams (streamx), which
 * took most of a 1,000-file bundle's time, and 20 ms of a 12-file build context; the headers are 512 bytes each and
 * simple to write.
 */
import { createHash, type Hash } from 'node:crypto';

export interface TarEntry {
  /** Also a directory's without a trailing slash, as tar-stream and tar-fs write them. */
  name: string;
  type: 'file' | 'symlink' | 'directory';
  /** File size; 0 for symlinks and directories. */
  size: number;
  /** The file's mode as stat gives it (type bits are dropped). */
  mode: number;
  mtime: Date;
  uid: number;
  gid: number;
  linkname?: string;
}

const BLOCK = 512;
const ZEROS = Buffer.alloc(1024);
const MODE_MASK = 0o7777;
const TYPEFLAG = { file: '0', symlink: '2', directory: '5', pax: 'x' } as const;

/** `n` octal digits and a space, or all sevens when the value does not fit (as tar-stream does). */
function octal(value: number, digits: number): string {
  const text = value.toString(8);
  return text.length > digits ? `${'7'.repeat(digits)} ` : `${'0'.repeat(digits - text.length)}${text} `;
}

/**
 * octal() written straight into the block: a header has seven such fields, and making a string for each was a
 * large part of a 1,000-file bundle's time.
 */
function writeOctal(block: Buffer, offset: number, value: number, digits: number): void {
  if (value < 0) {
    block.write(octal(value, digits), offset, 'latin1');
    return;
  }
  if (value >= 8 ** digits) {
    block.fill(0x37, offset, offset + digits);
  } else {
    let rest = value;
    for (let at = offset + digits - 1; at >= offset; at--) {
      block[at] = 0x30 + (rest % 8);
      rest = Math.floor(rest / 8);
    }
  }
  block[offset + digits] = 0x20;
}

/** Sizes beyond 11 octal digits (8 GiB) in base-256, as GNU tar and tar-stream write them. */
function writeSize(block: Buffer, size: number): void {
  if (size < 8 ** 11) {
    writeOctal(block, 124, size, 11);
    return;
  }
  block[124] = 0x80;
  let rest = size;
  for (let i = 11; i > 0; i--) {
    block[124 + i] = rest & 0xff;
    rest = Math.floor(rest / 0x100);
  }
}

/** What every header holds the same: ustar's magic and version, and zero device numbers. */
const TEMPLATE = (() => {
  const block = Buffer.alloc(BLOCK);
  block.write('ustar\u000000', 257, 'latin1');
  writeOctal(block, 329, 0, 6);
  writeOctal(block, 337, 0, 6);
  return block;
})();

/** An entry's header fields besides its name, size and type. */
interface HeaderFields {
  mode: number;
  mtime: Date;
  uid: number;
  gid: number;
}

function header(fields: HeaderFields, name: string, prefix: string, typeflag: string, size: number, linkname: string | undefined): Buffer {
  const block = Buffer.allocUnsafe(BLOCK);
  TEMPLATE.copy(block);
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, 100, fields.mode & MODE_MASK, 6);
  writeOctal(block, 108, fields.uid, 6);
  writeOctal(block, 116, fields.gid, 6);
  writeSize(block, size);
  writeOctal(block, 136, (fields.mtime.getTime() / 1000) | 0, 11);
  block[156] = typeflag.charCodeAt(0);
  if (linkname) block.write(linkname, 157, 100, 'utf8');
  if (prefix) block.write(prefix, 345, 155, 'utf8');
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK; i++) sum += block[i]!;
  writeOctal(block, 148, sum, 6);
  return block;
}

/** ustar's name and prefix for `name`, or undefined when ustar cannot hold it (non-ASCII, or too long). */
function ustarName(name: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(name) !== name.length) return undefined;
  let rest = name;
  let prefix = '';
  while (rest.length > 100) {
    const slash = rest.indexOf('/');
    if (slash === -1) return undefined;
    prefix += prefix ? `/${rest.slice(0, slash)}` : rest.slice(0, slash);
    rest = rest.slice(slash + 1);
  }
  return prefix.length > 155 ? undefined : { name: rest, prefix };
}

/** One PAX record: its own length in decimal, then ` key=value\n`. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const length = Buffer.byteLength(body);
  let digits = String(length).length;
  if (length + digits >= 10 ** digits) digits++;
  return `${length + digits}${body}`;
}

/** The zeros that round `size` bytes of content up to whole blocks; undefined when none are needed. */
export function tarPadding(size: number): Buffer | undefined {
  const over = size % BLOCK;
  return over === 0 ? undefined : ZEROS.subarray(0, BLOCK - over);
}

export class TarWriter {
  private readonly chunks: Buffer[] = [];
  /** Bytes in `chunks`. */
  private pending = 0;
  /** Undefined when the writer was asked for no digest (the build context's is computed by its walk). */
  private readonly hash: Hash | undefined;
  private contentBytes = 0;
  private files = 0;

  constructor(options: { digest?: boolean } = {}) {
    this.hash = options.digest === false ? undefined : createHash('sha256');
  }

  /** Adds an entry; `data` is a file's content (its length is the size). */
  entry(entry: TarEntry, data?: Buffer): void {
    const size = entry.type === 'file' ? (data?.length ?? 0) : 0;
    this.headers(entry, size);
    if (size > 0) {
      this.push(data!);
      const pad = tarPadding(size);
      if (pad) this.push(pad);
    }
    if (this.hash) {
      // The content digest's record of the entry (deploy/kernel/digest.ts reads a tar back the same way).
      const executable = (entry.mode & 0o111) !== 0 ? 'x' : '-';
      this.hash.update(`${entry.type}\0${entry.name}\0${executable}\0${entry.linkname ?? ''}\0${size}\0`);
      if (size > 0) this.hash.update(data!);
    }
    if (entry.type === 'file') this.files++;
    this.contentBytes += size;
  }

  /**
   * Only the header of a file of `size` bytes, whose content the caller sends itself (a file too large to hold),
   * followed by tarPadding(size). Not for a writer that digests: it never sees those bytes.
   */
  fileHeader(entry: TarEntry, size: number): void {
    if (this.hash) throw new Error('fileHeader is for writers without a digest');
    this.headers(entry, size);
    this.files++;
    this.contentBytes += size;
  }

  private headers(entry: TarEntry, size: number): void {
    const name = entry.name;
    const ustar = ustarName(name);
    const linkFits = !entry.linkname || Buffer.byteLength(entry.linkname) <= 100;
    if (ustar && linkFits) {
      this.push(header(entry, ustar.name, ustar.prefix, TYPEFLAG[entry.type], size, entry.linkname));
    } else {
      // tar-stream's PAX form: the real name and target in the extended header, `PaxHeader` in the ustar fields.
      const pax = Buffer.from(paxRecord('path', name) + (entry.linkname ? paxRecord('linkpath', entry.linkname) : ''));
      const linkname = entry.linkname ? 'PaxHeader' : undefined;
      this.push(header(entry, 'PaxHeader', '', TYPEFLAG.pax, pax.length, linkname), pax);
      const pad = tarPadding(pax.length);
      if (pad) this.push(pad);
      this.push(header(entry, 'PaxHeader', '', TYPEFLAG[entry.type], size, linkname));
    }
  }

  private push(...buffers: Buffer[]): void {
    for (const buffer of buffers) {
      this.chunks.push(buffer);
      this.pending += buffer.length;
    }
  }

  /** Bytes written since the last take. */
  get pendingBytes(): number {
    return this.pending;
  }

  /** The tar's bytes written since the last take (for a caller that compresses them as it goes). */
  take(): Buffer {
    const bytes = Buffer.concat(this.chunks, this.pending);
    this.chunks.length = 0;
    this.pending = 0;
    return bytes;
  }

  /**
   * The rest of the tar (the whole tar when take was never called), ending with its two zero blocks, and the
   * content digest of its entries.
   */
  finalize(): { tar: Buffer; contentDigest: string; files: number; contentBytes: number } {
    this.push(ZEROS);
    const tar = this.take();
    return { tar, contentDigest: this.hash?.digest('hex') ?? '', files: this.files, contentBytes: this.contentBytes };
  }
}
