/**
 * Content digests of what a deploy would ship, the same on any machine and any clone: a tar's entries by name, type,
 * executable bit, link target and bytes — not mtimes or owners, which a fresh checkout changes and the build cache
 * ignores too.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import tarStream from 'tar-stream';

export interface TarDigest {
  /** Hex SHA-256. */
  digest: string;
  files: number;
  /** Bytes of file content. */
  bytes: number;
}

export async function tarContentDigest(tar: Readable | Buffer): Promise<TarDigest> {
  const hash = createHash('sha256');
  let files = 0;
  let bytes = 0;
  const extract = tarStream.extract();
  const source = Buffer.isBuffer(tar) ? Readable.from([tar]) : tar;
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, body, next) => {
      const executable = ((header.mode ?? 0) & 0o111) !== 0 ? 'x' : '-';
      hash.update(`${header.type}\0${header.name}\0${executable}\0${header.linkname ?? ''}\0${header.size ?? 0}\0`);
      if (header.type === 'file') files++;
      body.on('data', (data: unknown) => {
        const chunk = data as Buffer;
        bytes += chunk.length;
        hash.update(chunk);
      });
      body.on('end', () => next());
      body.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    source.on('error', reject);
    source.pipe(extract);
  });
  return { digest: hash.digest('hex'), files, bytes };
}

/** The DAG bundle's content digest, from the gzip-compressed tar the upload would send. */
export async function dagBundleDigest(data: Buffer): Promise<TarDigest> {
  return tarContentDigest(gunzipSync(data));
}

/**
 * The image inputs digest: the build context (after .dockerignore), whether DAGs are left out, the build args, the
 * build secrets' ids (their values never: a changed secret does not show), and the base image as the engine has it.
 */
export function imageInputsDigest(input: {
  context: string;
  excludeDags: boolean;
  buildArgs: Readonly<Record<string, string>>;
  secretIds: string[];
  baseImage: string;
}): string {
  const args = Object.keys(input.buildArgs)
    .sort()
    .map((k) => [k, input.buildArgs[k]]);
  const header = JSON.stringify({
    v: 1,
    context: input.context,
    excludeDags: input.excludeDags,
    args,
    secrets: [...input.secretIds].sort(),
    base: input.baseImage,
  });
  return createHash('sha256').update(header).digest('hex');
}

/** The ids of `--build-secret` specs (`id=name,src=...` or `id=name,env=...`). */
export function buildSecretIds(specs: string[]): string[] {
  return specs.map((spec) => /(?:^|,)id=([^,]+)/.exec(spec)?.[1] ?? spec.split(',')[0] ?? spec);
}
