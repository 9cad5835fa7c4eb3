/**
 * Hostile DAG files are contained: each is reported as that file's result, the run finishes, nothing reaches the
 * network, astro's credentials never reach DAG code (not through the environment, /proc, the home directory,
 * astro's or Docker's config, nor encoded output), the project stays unchanged, and no process is left behind.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runParse, type ParseReport } from '../../../src/parse/index.js';
import { airflowPython, copyFixture, decodedOutput, probeHome, removeTempDirs, tempDir, type ProbeHome } from './helpers.js';

const SECRETS = {
  ASTRO_API_TOKEN: 'astro-token-c4n4ry-6c1f0e',
  ASTRONOMER_KEY_SECRET: 'astronomer-secret-c4n4ry-99a2',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-c4n4ry-71bd',
};

let server: net.Server;
let connections = 0;
let projectDir: string;
let before: string[];
let report: ParseReport;
let elapsedMs: number;
let home: ProbeHome;
const cacheDir = tempDir('astro-parse-cache-');
const leakFile = '/tmp/astro-parse-hostile-secret-reader.txt';

function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

/** Processes whose command line names this test's private project copy (the harness and its workers do). */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) found.push(Number(entry));
    } catch {
      // gone already
    }
  }
  return found;
}

beforeAll(async () => {
  server = net.createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  projectDir = copyFixture('hostile');
  home = probeHome(SECRETS.ASTRO_API_TOKEN);
  fs.writeFileSync(
    path.join(projectDir, '.env'),
    `CANARY_PORT=${port}\n# a bare name is copied from the caller's environment, except astro's credentials\nASTRO_API_TOKEN\n` +
      `PROBE_PATHS=${home.probePaths.join(':')}:${cacheDir}\nPROBE_REAL_HOME=${home.home}\n`,
  );
  fs.rmSync(leakFile, { force: true });
  fs.rmSync('/var/tmp/astro-parse-hostile-planted.txt', { force: true });
  before = listTree(projectDir);
  const started = performance.now();
  report = await runParse({
    projectDir,
    python: airflowPython(),
    hostEnv: { PATH: process.env.PATH, ...SECRETS, ...home.env },
    cacheDir,
    noCache: true,
    timeoutSeconds: 3,
    memoryLimitMb: 512,
  });
  elapsedMs = performance.now() - started;
});

afterAll(async () => {
  home.remove();
  await new Promise((resolve) => server.close(resolve));
  removeTempDirs();
  fs.rmSync(leakFile, { force: true });
});

function file(name: string) {
  const result = report.files.find((f) => f.path === `dags/${name}.py`);
  expect(result, name).toBeDefined();
  return result!;
}

describe('hostile DAG files', () => {
  it('the run finishes, well within the time the timeouts allow', () => {
    expect(report.summary.files).toBe(17);
    expect(elapsedMs).toBeLessThan(90_000);
    expect(file('well_behaved')).toMatchObject({ status: 'ok', dagIds: ['well_behaved'] });
  });

  it('an endless loop is stopped by the import timeout', () => {
    expect(file('infinite_loop').errors[0]).toMatchObject({ kind: 'import' });
    expect(file('infinite_loop').errors[0]?.message).toMatch(/AirflowTaskTimeout: DagBag import timeout/);
  });

  it('a loop that ignores the timeout signal is killed', () => {
    expect(file('stubborn_loop').errors[0]).toMatchObject({ kind: 'timeout' });
  });

  it("os._exit and a segfault are reported as that file's error", () => {
    expect(file('hard_exit').errors[0]?.message).toMatch(/exit code 3/);
    expect(file('segfault').errors[0]?.message).toMatch(/SIGSEGV/);
  });

  it('forks are allowed, as in the container, under a process cap; what they leave running ends with the file', () => {
    expect(file('fork_bomb')).toMatchObject({ status: 'ok' });
    expect(file('raw_fork').status).toBe('ok');
    expect(report.summary.sandbox.pidsLimit).toBe(1024);
    expect(file('pids_cap').output).toMatch(/pids\.max=1024/);
    expect(processesMentioning(projectDir)).toEqual([]);
  });

  it('a memory bomb hits the memory cap', () => {
    expect(file('memory_bomb').errors[0]?.message).toMatch(/MemoryError/);
  });

  it('a flood of output, a fake result line and closed stdout/stderr corrupt nothing', () => {
    const flood = file('stdout_flood');
    expect(flood).toMatchObject({ status: 'ok', dagIds: ['stdout_flood'] });
    expect((flood.output ?? '').length).toBeLessThan(64 * 1024);
    expect(flood.output).toMatch(/more bytes not kept/);
  });

  it('no network: neither the loopback canary nor an outside address is reached', () => {
    expect(file('socket_local').status).toBe('error');
    expect(file('socket_outside').status).toBe('error');
    expect(connections).toBe(0);
    expect(report.summary.sandbox.network).toBe('none');
  });

  it('credentials never reach DAG code, its output, the report, or files it writes', () => {
    const secretReader = file('secret_reader');
    expect(secretReader.status).toBe('ok');
    expect(secretReader.output).toMatch(/<absent>/);
    // /tmp inside the sandbox is its own: the file the DAG wrote is gone with it.
    expect(fs.existsSync(leakFile)).toBe(false);
    const everything = JSON.stringify(report) + decodedOutput(JSON.stringify(report));
    for (const secret of [...Object.values(SECRETS), home.canary]) expect(everything).not.toContain(secret);
  });

  it("/proc shows only the sandbox's own processes", () => {
    expect(file('proc_probe').status).toBe('ok');
    const seen = Number(/processes seen: (\d+)/.exec(file('proc_probe').output ?? '')?.[1]);
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(16);
  });

  it("the home directory, ASTRO_HOME, DOCKER_CONFIG and astro's cache are empty to DAG code", () => {
    expect(file('home_probe').output).toMatch(/files read: 0\b/);
    // Empty where the sandbox hides it; absent (ENOENT) below the temp directory, which the sandbox replaces.
    expect(file('home_probe').output).toMatch(home.belowTemp ? /real home entries: unreadable 2\b/ : /real home entries: 0\b/);
  });

  it('DAG code writes where a container could, the writes vanish, the project and the machine stay unchanged', () => {
    expect(report.summary.sandbox).toMatchObject({ projectReadOnly: true, projectView: 'overlay', hostFilesystem: 'read-only' });
    expect(file('writes_project')).toMatchObject({ status: 'ok' });
    expect(file('writes_system')).toMatchObject({ status: 'ok' });
    expect(fs.existsSync('/var/tmp/astro-parse-hostile-planted.txt')).toBe(false);
    expect(listTree(projectDir)).toEqual(before);
  });
});
