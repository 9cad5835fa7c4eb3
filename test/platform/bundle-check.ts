/**
 * Checks a DAG bundle the way a real Deployment consumes it: a gzip-compressed tar. On Airflow 2 the bundle is unpacked
 * into the Airflow home, so DAG files must sit under `dags/`; on Airflow 3 the bundle root is the DAG bundle itself, so
 * files at the root (Astronomer's `--no-dags-base-dir`) are fine too. A bundle without any file is valid everywhere:
 * it is how `astro deploy --dags` with an empty dags/ removes every DAG. The verdict carries a human reason, which
 * becomes the Deployment's `statusReason` when it is bad.
 */
import { gunzip } from 'node:zlib';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { extract } from 'tar-stream';

const gunzipAsync = promisify(gunzip);
const maxUnpackedBytes = 512 * 1024 * 1024;

export type BundleVerdict = { ok: true; files: string[] } | { ok: false; reason: string; files: string[] };

export interface BundleRules {
  /** Airflow 3 Deployments read the bundle root; Airflow 2 ones only `dags/`. */
  airflowMajor: 2 | 3;
}

/** `3.1-8` → 3; `12.5.0`, `11.3.0` (Runtime for Airflow 2) → 2. */
export function airflowMajorOfRuntime(runtimeVersion: string): 2 | 3 {
  return /^3\.\d+-\d+/.test(runtimeVersion) ? 3 : 2;
}

export async function checkDagBundle(data: Buffer, rules: BundleRules = { airflowMajor: 2 }): Promise<BundleVerdict> {
  if (data.length === 0) return { ok: false, reason: 'the DAG bundle is empty (0 bytes), not a gzip-compressed tar', files: [] };
  let tar: Buffer;
  try {
    tar = await gunzipAsync(data, { maxOutputLength: maxUnpackedBytes });
  } catch (error) {
    return { ok: false, reason: `the DAG bundle is not valid gzip data: ${(error as Error).message}`, files: [] };
  }
  let entries: TarEntry[];
  try {
    entries = await listTar(tar);
  } catch (error) {
    return { ok: false, reason: `the DAG bundle is not a valid tar archive: ${(error as Error).message}`, files: [] };
  }
  const files = entries.filter((e) => e.type !== 'directory').map((e) => e.name);
  const unsafe = files.find((name) => name.startsWith('/') || name.split('/').includes('..'));
  if (unsafe) return { ok: false, reason: `the DAG bundle contains an unsafe path: ${unsafe}`, files };
  const escaping = entries.find((e) => (e.type === 'symlink' || e.type === 'link') && e.linkname !== undefined && escapesRoot(e.name, e.linkname, e.type));
  if (escaping) return { ok: false, reason: `the DAG bundle contains a link that points outside it: ${escaping.name} -> ${escaping.linkname}`, files };
  if (files.length === 0) return { ok: true, files };
  if (rules.airflowMajor === 2 && !files.some((name) => name.startsWith('dags/'))) {
    return {
      ok: false,
      reason: `the DAG bundle has no entries under dags/ (first entry: ${files[0]}); Airflow 2 Deployments read DAGs from dags/ only`,
      files,
    };
  }
  return { ok: true, files };
}

function escapesRoot(name: string, target: string, type: string): boolean {
  if (target.startsWith('/')) return true;
  // Hard links name a path from the archive root; symlinks resolve against the link's own directory.
  const resolved = type === 'link' ? posix.normalize(target) : posix.normalize(posix.join(posix.dirname(name), target));
  return resolved === '..' || resolved.startsWith('../');
}

interface TarEntry {
  name: string;
  type: string;
  linkname?: string;
}

function listTar(tar: Buffer): Promise<TarEntry[]> {
  return new Promise((resolve, reject) => {
    const entries: TarEntry[] = [];
    const parser = extract();
    parser.on('entry', (header, stream, next) => {
      entries.push({ name: header.name.replace(/^\.\//, ''), type: header.type ?? 'file', linkname: header.linkname ?? undefined });
      stream.on('end', next);
      stream.on('error', reject);
      stream.resume();
    });
    parser.on('finish', () => resolve(entries));
    parser.on('error', reject);
    parser.end(tar);
  });
}
