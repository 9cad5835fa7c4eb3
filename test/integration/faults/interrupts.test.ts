// SIGINT / SIGTERM in every phase of `astro deploy`, sent to the built CLI running as a real child process. Each
// phase is held open by a gate the test controls (a DAG that sleeps, a build step that sleeps, a request or an answer
// held by the fault proxy), so the signal always lands inside the phase. The CLI must exit 130 / 143, say what
// reached the platform (and be right about it), leave the project unchanged and leave no temp file or process behind.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, DAG_ON, spawnDeploy, startFaultBed, type ChildDeploy, type FaultBed, type ProjectOptions } from '../../faults/bed.js';
import type { ProxyLogEntry } from '../../faults/proxy.js';

let bed: FaultBed;
let bin: string;

const SKIP_PARSE = { ASTRONOMER_SKIP_PARSE: 'true' };
const LAYER_PATCH = {
  method: 'PATCH',
  where: (r: { headers: Record<string, unknown> }) => r.headers['transfer-encoding'] !== undefined || Number(r.headers['content-length'] ?? 0) > 64 * 1024,
};

/** Resolves when `test` holds, checking every 50 ms: a gate on a condition, never on elapsed time. */
async function until(what: string, test: () => boolean | Promise<boolean>, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Command lines of every process on the machine. */
function commandLines(): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      lines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
    } catch {
      // gone meanwhile
    }
  }
  return lines;
}

/**
 * The processes of a build step whose command holds `token`, as the host sees them: a classic build's step runs in a
 * container, a BuildKit step under the engine's own runner (no container `docker ps` lists); both are host processes.
 */
function buildContainersWith(token: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(token));
}

interface InterruptCase {
  id: string;
  phase: string;
  signal: 'SIGINT' | 'SIGTERM';
  argv: string[];
  project?: ProjectOptions;
  parse?: boolean;
  /** Sets up the gate before the CLI starts. */
  arm?: (project: { dir: string; marker: string }) => Promise<void> | void;
  /** Resolves once the CLI is inside the phase. */
  gate: (child: ChildDeploy, project: { dir: string; marker: string }) => Promise<void>;
  reached: 'nothing' | 'creating' | 'created' | 'unknown' | 'finalized';
  imagePushed?: boolean;
  /** After the CLI exited: what must be gone (processes, containers). */
  after?: (project: { dir: string; marker: string }) => Promise<void>;
}

async function runInterrupt(c: InterruptCase): Promise<void> {
  const project = await bed.project(c.project);
  await c.arm?.(project);
  const tmp = await bed.tempDir('tmp');
  const fault = await bed.begin(`${c.signal} during ${c.id}`, 'signals', c.reached === 'finalized' ? 'survived' : 'refused', { deploymentId: DAG_ON, project });
  const child = spawnDeploy(bin, [DAG_ON, ...c.argv], { cwd: project.dir, env: bed.env(undefined, { TMPDIR: tmp, ...(c.parse ? {} : SKIP_PARSE) }) });
  await c.gate(child, project);
  child.child.kill(c.signal);
  const run = await child.done;
  for (const proxy of bed.proxies) proxy.release();
  await c.after?.(project);
  const reached = c.reached === 'creating' ? 'nothing' : c.reached;
  const verdict = await fault.interrupted(run, {
    signal: c.signal,
    phase: c.phase,
    reached,
    imagePushed: c.imagePushed,
    tempDir: tmp,
    creating: c.reached === 'creating',
  });
  expect(verdict.outcome, `${verdict.detail}\n--- stderr ---\n${run.stderr}`).toBe(c.reached === 'finalized' ? 'survived' : 'refused');
}

beforeAll(async () => {
  [bed, bin] = await Promise.all([startFaultBed('interrupts'), buildCli()]);
  const warm = await bed.project();
  const run = await bed.deploy([DAG_ON, '--json'], { cwd: warm.dir, env: SKIP_PARSE });
  expect(run.code, run.stderr).toBe(0);
});

afterEach(() => {
  bed.closeDangling();
  bed.resetFaults();
});

afterAll(async () => {
  if (bed) console.log(`fault suite figures: ${await bed.stop()}`);
});

describe('signals in every phase of astro deploy', () => {
  it('SIGINT while the DAGs are parsed: exit 130, nothing reached the platform, the parse processes are gone', async () => {
    let token = '';
    await runInterrupt({
      id: 'parse (a DAG that sleeps at import)',
      phase: 'parse',
      signal: 'SIGINT',
      argv: ['--dags'],
      parse: true,
      arm: async ({ dir, marker }) => {
        // A unique sleep in a grandchild of the parse: visible in the process table, and it must die with the parse.
        token = `3599.${parseInt(marker.slice(0, 6), 16)}`;
        await fs.writeFile(
          path.join(dir, 'dags', 'slow_dag.py'),
          `import subprocess, time\nfrom airflow.sdk import DAG\nsubprocess.Popen(["sleep", "${token}"])\ntime.sleep(600)\n`,
        );
      },
      gate: () => until('the slow DAG to be imported', () => commandLines().some((l) => l.includes(`sleep ${token}`))),
      reached: 'nothing',
      after: () => until('the parse processes to be gone', () => !commandLines().some((l) => l.includes(`sleep ${token}`)), 10_000),
    });
  });

  it('SIGTERM while the image builds: exit 143, nothing reached the platform, the build stopped, .dockerignore untouched', async () => {
    await runInterrupt({
      id: 'build (a build step that sleeps)',
      phase: 'build',
      signal: 'SIGTERM',
      argv: [],
      arm: async ({ dir, marker }) => {
        await fs.appendFile(path.join(dir, 'Dockerfile'), `RUN echo build-${marker} && sleep 600\n`);
      },
      gate: (child, { marker }) => until('the sleeping build step', () => buildContainersWith(`build-${marker}`).length > 0),
      reached: 'nothing',
      after: ({ marker }) => until('the build container to be gone', () => buildContainersWith(`build-${marker}`).length === 0, 20_000),
    });
  });

  it('SIGINT while the deploy is created (its answer held): exit 130, says nothing was pushed, uploaded or finalized', async () => {
    await runInterrupt({
      id: 'create (the answer held after the platform created the deploy)',
      phase: 'create',
      signal: 'SIGINT',
      argv: ['--dags'],
      arm: () => void bed.api.add({ name: 'create-answer', match: { method: 'POST', path: /\/deploys$/ }, action: { hold: 'response' } }),
      gate: () => bed.api.held('create-answer'),
      reached: 'creating',
    });
  });

  it('SIGINT while the image is pushed (a layer upload held): exit 130, says the deploy was created and the image not pushed', async () => {
    await runInterrupt({
      id: 'push (a layer upload held)',
      phase: 'push',
      signal: 'SIGINT',
      argv: ['--image'],
      project: { imagePayloadBytes: 2_000_000 },
      arm: () => void bed.registry.add({ name: 'layer', match: LAYER_PATCH, action: { hold: 'request' }, count: 'always' }),
      gate: () => bed.registry.held('layer'),
      reached: 'created',
      imagePushed: false,
    });
  });

  it('SIGTERM while the DAGs upload (a block held): exit 143, says the deploy was created and the bundle not uploaded', async () => {
    await runInterrupt({
      id: 'upload (a Put Block held)',
      phase: 'upload',
      signal: 'SIGTERM',
      argv: ['--dags'],
      project: { dagPayloadBytes: 2_500_000 },
      arm: () => void bed.blob.add({ name: 'block', match: { method: 'PUT', query: { comp: 'block' } }, action: { hold: 'request' }, count: 'always' }),
      gate: () => bed.blob.held('block'),
      reached: 'created',
    });
  });

  it('SIGINT while the finalize is on its way (request held): exit 130, says its outcome is unknown and to check before deploying again', async () => {
    await runInterrupt({
      id: 'finalize (the request held before the platform)',
      phase: 'finalize',
      signal: 'SIGINT',
      argv: ['--dags'],
      arm: () => void bed.api.add({ name: 'finalize', match: { method: 'POST', path: /\/finalize$/ }, action: { hold: 'request' } }),
      gate: () => bed.api.held('finalize'),
      reached: 'unknown',
    });
  });

  it('SIGTERM after the platform applied the finalize (answer held): exit 143, says the deploy was finalized', async () => {
    await runInterrupt({
      id: 'finalize (the answer held after the platform applied it)',
      phase: 'finalize',
      signal: 'SIGTERM',
      argv: ['--image'],
      arm: () => void bed.api.add({ name: 'finalize-answer', match: { method: 'POST', path: /\/finalize$/ }, action: { hold: 'response' } }),
      gate: () => bed.api.held('finalize-answer'),
      reached: 'finalized',
    });
  });

  it('SIGINT while waiting for the Deployment to be healthy: exit 130, says the deploy was finalized', async () => {
    const options = bed.stack.platform.options;
    const delay = options.healthDelayMs;
    options.healthDelayMs = 120_000;
    try {
      let start = 0;
      await runInterrupt({
        id: 'wait (the Deployment still DEPLOYING)',
        phase: 'wait',
        signal: 'SIGINT',
        argv: ['--dags', '--wait', '--wait-time', '5m'],
        arm: () => void (start = bed.api.mark()),
        gate: async () => {
          const finalized = (e: ProxyLogEntry) => e.seq > start && e.method === 'POST' && e.path.endsWith('/finalize') && e.status === 200;
          await bed.api.waitForRequests(finalized);
          const at = bed.api.log.find(finalized)!.seq;
          // The first health poll after the finalize: the CLI is waiting.
          await bed.api.waitForRequests((e) => e.seq > at && e.method === 'GET' && /\/deployments\/[^/]+$/.test(e.path) && e.status === 200);
        },
        reached: 'finalized',
      });
    } finally {
      options.healthDelayMs = delay;
    }
  });
});
