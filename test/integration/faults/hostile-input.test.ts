// Hostile-but-fair input and broken surroundings: file names and DAG errors carrying terminal escapes, --json with
// command lines commander refuses, a working directory deleted under the shell. Each must end in a clear refusal:
// the right exit code, a message that says what happened, no raw control sequence on the terminal, one JSON
// document with --json, nothing half-deployed and the project untouched (the bed's verdict checks all of it).
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CliRun } from '../../helpers/cli.js';
import { buildCli, DAG_ON, startFaultBed, type FaultBed, type Project } from '../../faults/bed.js';

let bed: FaultBed;
let bin: string;
const EVIL_NAME = 'evil\u001b[31mRED\u202e\nfake ok line.py';

beforeAll(async () => {
  [bed, bin] = await Promise.all([startFaultBed('hostile-input'), buildCli()]);
});

afterEach(() => bed.closeDangling());

afterAll(async () => {
  if (bed) console.log(`fault suite figures: ${await bed.stop()}`);
});

async function hostileProject(): Promise<Project> {
  return bed.project({
    mutate: async (dir) => {
      await fs.writeFile(path.join(dir, 'dags', EVIL_NAME), 'from airflow.sdk import DAG\nraise RuntimeError("boom \\x1b[2J\\x9b2J\\u202e")\n');
    },
  });
}

/** The built CLI started by a shell that deletes its working directory first. */
async function deployFromDeletedDirectory(argv: string[]): Promise<CliRun> {
  const dir = await bed.tempDir('gone');
  const quoted = [process.execPath, bin, 'deploy', ...argv].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `cd "$1" && rmdir "$1" && exec ${quoted}`, 'sh', dir], {
      cwd: path.dirname(dir),
      env: { PATH: process.env.PATH, HOME: '/nonexistent-home', NO_COLOR: '1', ...bed.env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('hostile input: shown, never acted on', () => {
  for (const json of [false, true]) {
    it(`a DAG file whose name and error carry terminal escapes and a newline${json ? ' (--json)' : ''}`, async () => {
      const project = await hostileProject();
      const fault = await bed.begin(`DAG name and error with escapes${json ? ', --json' : ''}`, 'hostile input', 'refused', { deploymentId: DAG_ON, project });
      const run = await bed.deploy([DAG_ON, '--dags', ...(json ? ['--json'] : [])], { cwd: project.dir, env: { ASTRONOMER_SKIP_PARSE: 'false' } });
      const verdict = await fault.refused(run, { code: 1, json, message: [/evil\\x1b\[31mRED\\u202e\\nfake ok line\.py/, /your local DAGs did not parse/] });
      expect(verdict.outcome, `${verdict.detail}\n--- stderr ---\n${run.stderr}`).toBe('refused');
      // No line of the output starts with the forged text.
      expect((run.stdout + run.stderr).split('\n').some((l) => l.startsWith('fake ok line'))).toBe(false);
    });
  }
});

describe("--json: one document for every outcome, commander's refusals included", () => {
  const cases: { id: string; argv: string[]; code: number; message: RegExp }[] = [
    { id: 'deploy --bogus --json', argv: ['--bogus', '--json'], code: 2, message: /unknown option '--bogus'/ },
    { id: 'deploy --json --wait-time (missing value)', argv: [DAG_ON, '--json', '--wait-time'], code: 2, message: /--wait-time.*argument missing/ },
    { id: 'deploy <unknown id> --json', argv: ['cldepdoesnotexist00000000', '--dags', '--json'], code: 1, message: /cldepdoesnotexist00000000 was not found/ },
  ];
  for (const c of cases) {
    it(c.id, async () => {
      const project = await bed.project();
      const fault = await bed.begin(c.id, 'json errors', 'refused', { deploymentId: DAG_ON, project });
      const run = await bed.deploy(c.argv, { cwd: project.dir, env: { ASTRONOMER_SKIP_PARSE: 'true' } });
      const verdict = await fault.refused(run, { code: c.code, json: true, message: c.message });
      expect(verdict.outcome, `${verdict.detail}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`).toBe('refused');
    });
  }
});

describe('a working directory deleted under the shell', () => {
  for (const json of [false, true]) {
    it(`deploy refuses clearly, without a stack trace${json ? ' (--json)' : ''}`, async () => {
      const fault = await bed.begin(`deleted working directory${json ? ', --json' : ''}`, 'working directory', 'refused', { deploymentId: DAG_ON });
      const run = await deployFromDeletedDirectory([DAG_ON, '--dags', ...(json ? ['--json'] : [])]);
      const verdict = await fault.refused(run, { code: 1, json, message: /The current directory no longer exists/ });
      expect(verdict.outcome, `${verdict.detail}\n--- stderr ---\n${run.stderr}`).toBe('refused');
      expect(run.stderr).not.toMatch(/uv_cwd|\n\s+at /);
    });
  }
});
