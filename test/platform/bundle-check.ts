/**
 * Checks a DAG bundle the way a real deployment would consume it: a gzip-compressed tar whose files land under
 * `dags/`. The verdict carries a human reason, which becomes the Deployment's `statusReason` when it is bad.
 */
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { extract } from 'tar-stream';

const gunzipAsync = promisify(gunzip);
const maxUnpackedBytes = 512 * 1024 * 1024;

export type BundleVerdict = { ok: true; files: string[] } | { ok: false; reason: string; files: string[] };

export async function checkDagBundle(data: Buffer): Promise<BundleVerdict> {
  if (data.length === 0) return { ok: false, reason: 'the DAG bundle is empty (0 bytes)', files: [] };
  let tar: Buffer;
  try {
    tar = await gunzipAsync(data, { maxOutputLength: maxUnpackedBytes });
  } catch (error) {
    return { ok: false, reason: `the DAG bundle is not valid gzip data: ${(error as Error).message}`, files: [] };
  }
  let entries: { name: string; type: string }[];
  try {
    entries = await listTar(tar);
  } catch (error) {
    return { ok: false, reason: `the DAG bundle is not a valid tar archive: ${(error as Error).message}`, files: [] };
  }
  const files = entries.filter((e) => e.type !== 'directory').map((e) => e.name);
  const unsafe = files.find((name) => name.startsWith('/') || name.split('/').includes('..'));
  if (unsafe) return { ok: false, reason: `the DAG bundle contains an unsafe path: ${unsafe}`, files };
  if (!files.some((name) => name.startsWith('dags/'))) {
    return {
      ok: false,
      reason: files.length === 0 ? 'the DAG bundle contains no files' : `the DAG bundle has no entries under dags/ (first entry: ${files[0]})`,
      files,
    };
  }
  return { ok: true, files };
}

function listTar(tar: Buffer): Promise<{ name: string; type: string }[]> {
  return new Promise((resolve, reject) => {
    const entries: { name: string; type: string }[] = [];
    const parser = extract();
    parser.on('entry', (header, stream, next) => {
      entries.push({ name: header.name.replace(/^\.\//, ''), type: header.type ?? 'file' });
      stream.on('end', next);
      stream.on('error', reject);
      stream.resume();
    });
    parser.on('finish', () => resolve(entries));
    parser.on('error', reject);
    parser.end(tar);
  });
}
