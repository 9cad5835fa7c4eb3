// Build + push of the same project on the same engine and registry: `docker build` + `docker tag` + `docker push` +
// `docker rmi` (Debian's client, what Astronomer's CLI runs) against astro's image services (compiled code). Each run
// changes one file of the project first, so both rebuild the COPY layer and push a new layer under a new tag.
// Requires a build (npm run build) and a running Docker engine.
//
// Two comparisons:
// - whole command: a fresh `node bench/scripts/build-push.mjs` per run, so Node's start and module loading count;
// - warm process: the same work in an already running Node process (bench/scripts/build-push-worker.mjs), as in
//   `astro deploy`, where the CLI is up long before the build starts. The baseline pays its process starts either
//   way, as it does inside Astronomer's CLI.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildShellBaseImage, docker, DOCKER_CLI, DOCKER_SOCKET, removeImages, removeImagesOfRun } from '../test/integration/image/docker.js';
import { compare, median, type Comparison } from './lib.js';

async function writeBenchProject(dir: string, baseImage: string): Promise<void> {
  await fs.mkdir(path.join(dir, 'dags'), { recursive: true });
  await fs.mkdir(path.join(dir, 'include', 'data'), { recursive: true });
  await fs.mkdir(path.join(dir, 'plugins'), { recursive: true });
  await fs.writeFile(path.join(dir, 'Dockerfile'), `FROM ${baseImage}\nCOPY . /usr/local/airflow/\n`);
  await fs.writeFile(path.join(dir, '.dockerignore'), 'astro\n.git\n.env\nairflow_settings.yaml\nlogs/\n');
  await fs.writeFile(path.join(dir, 'requirements.txt'), 'apache-airflow-providers-http\n');
  for (let i = 0; i < 40; i++) {
    await fs.writeFile(path.join(dir, 'dags', `dag_${i}.py`), `# dag ${i}\n${'x = 1\n'.repeat(200)}`);
  }
  // A few MB of data files, as projects keep in include/: pseudo-random so gzip cannot shrink them away.
  for (let i = 0; i < 8; i++) {
    const chunk = Buffer.alloc(512 * 1024);
    for (let j = 0; j < chunk.length; j += 4) chunk.writeUInt32LE((Math.imul(i * 7919 + j, 2654435761) ^ (j << 7)) >>> 0, j);
    await fs.writeFile(path.join(dir, 'include', 'data', `part-${i}.bin`), chunk);
  }
  await fs.writeFile(path.join(dir, 'plugins', 'plugin.py'), '');
}

/** The test registry in a child process: compare() blocks this process, so its token server could not answer here. */
async function startRegistryProcess(): Promise<{ host: string; token: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('test/integration/image/registry.ts'), 'serve'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const first = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (c: Buffer) => {
      buffered += c.toString();
      const newline = buffered.indexOf('\n');
      if (newline !== -1) resolve(buffered.slice(0, newline));
    });
    void exited.then(() => reject(new Error('the test registry process exited before it was ready')));
  });
  const { host, token } = JSON.parse(first) as { host: string; token: string };
  return {
    host,
    token,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A warm worker process answering one build + push per request line. */
async function startWorker(): Promise<{ run(line: string): Promise<void>; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [path.resolve('bench/scripts/build-push-worker.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let waiting: ((answer: string) => void) | undefined;
  let buffered = '';
  child.stdout.on('data', (c: Buffer) => {
    buffered += c.toString();
    let newline = buffered.indexOf('\n');
    while (newline !== -1) {
      const answer = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      waiting?.(answer);
      newline = buffered.indexOf('\n');
    }
  });
  return {
    async run(line) {
      const answer = await new Promise<string>((resolve) => {
        waiting = resolve;
        child.stdin.write(`${line}\n`);
      });
      if (answer !== 'ok') throw new Error(`warm build + push failed: ${answer}`);
    },
    async stop() {
      child.stdin.end();
      await exited;
    },
  };
}

function timeSync(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function timeAsync(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export default async function run(): Promise<Comparison[]> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-bench-image-'));
  const runId = randomUUID();
  const base = `astro-bench/runtime-base-${runId.slice(0, 8)}:3.1-8`;
  const local = `astro-bench/local-${randomUUID().slice(0, 8)}`;
  const registry = await startRegistryProcess();
  const dockerConfig = path.join(work, 'docker-config');
  try {
    await buildShellBaseImage(base, { 'io.astronomer.docker.runtime.version': '3.1-8' }, runId);
    const project = path.join(work, 'project');
    await writeBenchProject(project, base);
    await fs.mkdir(dockerConfig);
    docker(['login', registry.host, '-u', 'cli', '--password-stdin'], { input: registry.token, env: { DOCKER_CONFIG: dockerConfig } });

    // Synchronous on purpose: compare() calls `before` and then times the command right away.
    const touch = () => {
      fsSync.writeFileSync(path.join(project, 'include', 'stamp.txt'), `${Date.now()} ${randomUUID()}\n`);
    };
    const baselineScript = [
      'set -e',
      'tag=$(date +%s%N)',
      `"${DOCKER_CLI}" build -q --platform linux/amd64 --label io.astronomer.deploy.revision.description=bench -t ${local}-docker:latest . >/dev/null`,
      `"${DOCKER_CLI}" tag ${local}-docker:latest ${registry.host}/bench/airflow:$tag`,
      `"${DOCKER_CLI}" push ${registry.host}/bench/airflow:$tag >/dev/null`,
      `"${DOCKER_CLI}" rmi ${registry.host}/bench/airflow:$tag >/dev/null`,
    ].join('\n');

    const baselineOptions = { cwd: project, env: { ...process.env, DOCKER_CONFIG: dockerConfig, DOCKER_BUILDKIT: '0' } };
    const runBaseline = () => {
      const result = spawnSync('sh', ['-c', baselineScript], { ...baselineOptions, stdio: 'ignore' });
      if (result.status !== 0) throw new Error(`baseline exited with ${result.status ?? result.signal}`);
    };
    const wholeCommand = compare(
      'image build + push, whole command (node start included) vs docker build + docker push',
      {
        label: 'docker build + tag + push + rmi',
        command: 'sh',
        args: ['-c', baselineScript],
        options: baselineOptions,
        before: touch,
      },
      {
        label: 'astro buildProjectImage + pushImage',
        command: process.execPath,
        args: [path.resolve('bench/scripts/build-push.mjs'), project, `${local}-astro:latest`, registry.host, registry.token, DOCKER_SOCKET],
        before: touch,
      },
      { runs: 15, warmup: 2, target: 1.05 },
    );

    const worker = await startWorker();
    try {
      const request = [project, `${local}-astro:latest`, registry.host, registry.token, DOCKER_SOCKET].join(' ');
      const b: number[] = [];
      const c: number[] = [];
      for (let i = 0; i < 17; i++) {
        touch();
        const baselineMs = timeSync(runBaseline);
        touch();
        const candidateMs = await timeAsync(() => worker.run(request));
        // The first two rounds warm caches and the worker's JIT, as compare() does.
        if (i < 2) continue;
        b.push(baselineMs);
        c.push(candidateMs);
      }
      const ratio = median(c) / median(b);
      const warm: Comparison = {
        name: 'image build + push, warm astro process vs docker build + docker push',
        baseline: { label: 'docker build + tag + push + rmi', medianMs: median(b), samples: b },
        candidate: { label: 'astro buildProjectImage + pushImage (warm process)', medianMs: median(c), samples: c },
        ratio,
        target: 1.05,
        met: ratio <= 1.05,
      };
      return [wholeCommand, warm];
    } finally {
      await worker.stop();
    }
  } finally {
    await registry.stop();
    removeImages(`${local}-docker:latest`, `${local}-astro:latest`, base);
    removeImagesOfRun(runId);
    await fs.rm(work, { recursive: true, force: true });
  }
}
