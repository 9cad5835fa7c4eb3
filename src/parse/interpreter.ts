/**
 * Host mode needs a Python with Airflow: the one named with --python, else the project's `.venv`, else the one
 * configured for astro. Its identity (version plus the set of installed distributions) keys the parse cache, so
 * installing or upgrading a package invalidates cached verdicts.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { UserError } from '../errors.js';
import { readJsonFile, writeJsonFileAtomic } from '../util/json-file.js';

export interface InterpreterChoice {
  /** As given or found (not resolved), for messages. */
  python: string;
  source: 'flag' | 'project-venv' | 'config';
}

export async function findInterpreter(options: { projectDir: string; python?: string; configuredPython?: string }): Promise<InterpreterChoice> {
  if (options.python !== undefined) {
    const python = path.resolve(options.projectDir, options.python);
    if (!(await isExecutable(python))) {
      throw new UserError(`The Python interpreter ${options.python} does not exist or is not executable.`, {
        nextStep: 'Pass --python with the path of a Python that has Airflow installed.',
      });
    }
    return { python, source: 'flag' };
  }
  const venv = path.join(options.projectDir, '.venv', 'bin', 'python');
  if (await isExecutable(venv)) return { python: venv, source: 'project-venv' };
  if (options.configuredPython !== undefined && (await isExecutable(options.configuredPython))) {
    return { python: options.configuredPython, source: 'config' };
  }
  throw new UserError('No Python interpreter with Airflow was found to parse the DAGs on this machine.', {
    nextStep:
      'Pass --python <path to a Python with Airflow>, create the project virtualenv in .venv, or parse inside ' +
      'the project image with --image-name <image>.',
  });
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, fs.constants.X_OK);
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

const PROBE = [
  'import sys, os, json, hashlib',
  'dirs = sorted({os.path.realpath(p) for p in sys.path if p and os.path.isdir(p) and ("site-packages" in p or "dist-packages" in p)})',
  'h = hashlib.sha256()',
  'for d in dirs:',
  '    h.update(d.encode() + b"\\0")',
  '    for n in sorted(os.listdir(d)):',
  '        h.update(n.encode() + b"\\0")',
  'print(json.dumps({"version": sys.version.split()[0], "executable": sys.executable, "prefix": sys.prefix, "basePrefix": sys.base_prefix, "dirs": dirs, "listing": h.hexdigest()}))',
].join('\n');

const probeResult = z.object({
  version: z.string(),
  executable: z.string(),
  prefix: z.string(),
  basePrefix: z.string(),
  dirs: z.array(z.string()),
  listing: z.string(),
});

const memoEntry = z.object({
  python: z.object({ mtimeMs: z.number(), size: z.number() }),
  dirs: z.array(z.object({ path: z.string(), mtimeMs: z.number() })),
  identity: z.string(),
  version: z.string(),
  prefixes: z.array(z.string()),
});
const memoFile = z.record(z.string(), memoEntry);

export interface InterpreterIdentity {
  identity: string;
  version: string;
  realPath: string;
  /** Where the interpreter and its packages live (the venv, the Python it was made from, site directories). */
  prefixes: string[];
}

/**
 * The identity is remembered per interpreter together with the modification times of its site-packages
 * directories (installing, removing or upgrading a distribution changes them), so a warm run starts no Python.
 */
export async function interpreterIdentity(python: string, cacheDir: string, env: Record<string, string>): Promise<InterpreterIdentity> {
  const realPath = await fs.realpath(python);
  const memoPath = path.join(cacheDir, 'interpreters.json');
  const memo = (await readJsonFile(memoPath, memoFile)) ?? {};
  const stat = await fs.stat(realPath);
  const known = memo[python];
  if (known !== undefined && known.python.mtimeMs === stat.mtimeMs && known.python.size === stat.size) {
    const unchanged = await Promise.all(
      known.dirs.map(async (dir) => {
        try {
          return (await fs.stat(dir.path)).mtimeMs === dir.mtimeMs;
        } catch {
          return false;
        }
      }),
    );
    if (unchanged.every(Boolean)) return { identity: known.identity, version: known.version, realPath, prefixes: known.prefixes };
  }
  const probe = await runProbe(python, env);
  const identity = createHash('sha256').update(JSON.stringify(probe)).digest('hex');
  const dirs = await Promise.all(probe.dirs.map(async (dir) => ({ path: dir, mtimeMs: (await fs.stat(dir)).mtimeMs })));
  const prefixes = [...new Set([probe.prefix, probe.basePrefix, path.dirname(path.dirname(realPath)), ...probe.dirs])];
  memo[python] = { python: { mtimeMs: stat.mtimeMs, size: stat.size }, dirs, identity, version: probe.version, prefixes };
  await writeJsonFileAtomic(memoPath, memo);
  return { identity, version: probe.version, realPath, prefixes };
}

async function runProbe(python: string, env: Record<string, string>): Promise<z.infer<typeof probeResult>> {
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(python, ['-c', PROBE], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
  });
  const parsed = code === 0 ? probeResult.safeParse(safeJson(stdout.trim().split('\n').pop() ?? '')) : undefined;
  if (parsed === undefined || !parsed.success) {
    throw new UserError(`Could not run the Python interpreter ${python}: ${stderr.trim().slice(-500) || `exit code ${code}`}`, {
      nextStep: 'Pass --python with the path of a working Python that has Airflow installed.',
    });
  }
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
