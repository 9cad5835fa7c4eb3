// The host-mode sandbox itself (src/parse/sandbox.ts, python/astro_parse/confine.py), around a plain Python command:
// what the command sees, and what a set-up step that cannot be done does. DAG code in it: hostile.test.ts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostSandbox, makeRunDirs, SANDBOX_SETUP_FAILED, sandboxSetupError, sandboxSpec, type SandboxSpec } from '../../../src/parse/sandbox.js';
import { provisioned } from '../../helpers/provisioned.js';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-sandbox-it-'));
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

const python = provisioned().AIRFLOW_PYTHON;

async function specFor(projectDir: string): Promise<SandboxSpec> {
  const dirs = await makeRunDirs('astro-sandbox-it-run-');
  const home = path.join(base, 'home');
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(path.join(home, 'token'), 'canary');
  return sandboxSpec({ projectDir, dirs, reveal: [path.dirname(path.dirname(python))], hostEnv: { HOME: home }, cacheDir: path.join(base, 'cache') });
}

function runIn(spec: SandboxSpec, code: string) {
  const sandbox = hostSandbox();
  expect(sandbox.network).toBe('none');
  const wrapped = sandbox.wrap(python, ['-c', code], spec);
  const result = spawnSync(wrapped.command, wrapped.args, { encoding: 'utf8', timeout: 60_000 });
  return { result, finish: () => sandbox.finish(spec) };
}

describe('the host sandbox', () => {
  it('runs the command as pid 1 of its own namespaces, without capabilities, on a read-only root, the project a writable view', async () => {
    const project = path.join(base, 'project');
    fs.mkdirSync(project, { recursive: true });
    fs.writeFileSync(path.join(project, 'kept.txt'), 'original');
    const spec = await specFor(project);
    const { result, finish } = runIn(
      spec,
      [
        'import json, os',
        'status = dict(l.rstrip("\\n").split(":\\t", 1) for l in open("/proc/self/status") if ":\\t" in l)',
        'def writable(p):',
        '    try:',
        '        open(os.path.join(p, ".probe"), "w").close(); return True',
        '    except OSError: return False',
        'open("kept.txt", "w").write("changed")',
        'def read(p):',
        '    try:',
        '        return open(p).read()',
        '    except OSError: return None',
        'print(json.dumps({"pid": os.getpid(), "cwd": os.getcwd(), "capEff": status["CapEff"], "capBnd": status["CapBnd"],',
        '  "noNewPrivs": status["NoNewPrivs"], "root": writable("/"), "usr": writable("/usr"), "tmp": writable("/tmp"),',
        `  "project": open("kept.txt").read(), "canary": read(${JSON.stringify(path.join(base, 'home', 'token'))}),`,
        '  "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}))',
      ].join('\n'),
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const seen = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(seen).toMatchObject({
      pid: 1,
      cwd: project,
      capEff: '0000000000000000',
      capBnd: '0000000000000000',
      noNewPrivs: '1',
      root: false,
      usr: false,
      tmp: true,
      project: 'changed',
      canary: null,
      procs: [1],
    });
    expect(await finish()).toMatchObject({ projectView: 'overlay' });
    // The write went to the view only.
    expect(fs.readFileSync(path.join(project, 'kept.txt'), 'utf8')).toBe('original');
  });

  it('a set-up step that cannot be done ends the run with 97 and one line saying why, before the command runs', async () => {
    const marker = path.join(base, 'ran');
    const project = path.join(base, 'project-2');
    fs.mkdirSync(project, { recursive: true });
    // Its layers cannot be made where nothing can be created.
    const spec = { ...(await specFor(project)), scratch: '/proc/astro-sandbox-test' };
    const { result, finish } = runIn(spec, `open(${JSON.stringify(marker)}, "w").close()`);
    await finish();
    expect(result.status).toBe(SANDBOX_SETUP_FAILED);
    expect(result.stderr).toBe('astro sandbox: cannot create /proc/astro-sandbox-test\n');
    expect(fs.existsSync(marker)).toBe(false);
    expect(sandboxSetupError(result.stderr).message).toBe('The sandbox for DAG code could not be set up: cannot create /proc/astro-sandbox-test.');
  });
});
