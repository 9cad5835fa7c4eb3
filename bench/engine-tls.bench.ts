// Build + push of the same small project on the same engine (the second dockerd of scripts/engines/tls-dockerd.sh),
// once through its Unix socket and once through TCP with mutual TLS, both with dockerode clients made from
// resolveEngineTarget. Same engine, same registry, same work: the ratio is the cost of the transport. Each run adds
// a new file of a few MB, so both rebuild the COPY layer and push a new layer under a new tag. Runs interleave.
//
// Requires root (it starts the engine with the script) and the stand-in Runtime base image (scripts/provision.sh).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { resolveEngineTarget, type EngineEnvironment } from '../src/image/engine-target.js';
import { nodeEngineFs } from '../src/image/engine-target-node.js';
import { startTestRegistry, type TestRegistry } from '../test/integration/image/registry.js';
import { median, type Comparison } from './lib.js';

const RUNS = 7;
const WARMUP = 2;
const PAYLOAD_BYTES = 4 * 1024 * 1024;

function startTlsEngine(): Record<string, string> {
  const out = execFileSync('bash', ['scripts/engines/tls-dockerd.sh', 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return Object.fromEntries(
    out
      .split('\n')
      .map((line) => /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
}

async function drain(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  const events = await new Promise<Array<{ error?: string }>>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, result: Array<{ error?: string }>) => (error ? reject(error) : resolve(result))),
  );
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(failed.error);
}

async function buildAndPush(docker: Docker, base: string, registry: TestRegistry, repository: string, run: number): Promise<number> {
  const tag = `run-${run}`;
  const ref = `${registry.host}/${repository}:${tag}`;
  const context = pack();
  context.entry({ name: 'Dockerfile' }, `FROM ${base}\nCOPY payload.bin /usr/local/airflow/include/payload.bin\n`);
  context.entry({ name: 'payload.bin' }, randomBytes(PAYLOAD_BYTES));
  context.finalize();
  const start = process.hrtime.bigint();
  await drain(docker, await docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: ref, platform: 'linux/amd64' }));
  await drain(
    docker,
    await docker.getImage(`${registry.host}/${repository}`).push({ tag, authconfig: { username: 'cli', password: registry.token, serveraddress: registry.host } }),
  );
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  await docker.getImage(ref).remove({ force: true });
  return ms;
}

export default async function bench(): Promise<Comparison> {
  const engine = startTlsEngine();
  const base = engine.ENGINE_TLS_RUNTIME_IMAGE!;
  const registry = await startTestRegistry();
  try {
    const env: EngineEnvironment = { HOME: process.env.HOME ?? '/root' };
    const unix = await resolveEngineTarget({ env: { ...env, DOCKER_HOST: `unix://${engine.ENGINE_TLS_SOCKET}` }, fs: nodeEngineFs });
    const tls = await resolveEngineTarget({
      env: { ...env, DOCKER_HOST: engine.DOCKER_HOST, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: engine.DOCKER_CERT_PATH },
      fs: nodeEngineFs,
    });
    const unixDocker = new Docker(unix.options);
    const tlsDocker = new Docker(tls.options);
    const b: number[] = [];
    const c: number[] = [];
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const u = await buildAndPush(unixDocker, base, registry, 'bench-engine-unix', i);
      const t = await buildAndPush(tlsDocker, base, registry, 'bench-engine-tls', i);
      if (i >= WARMUP) {
        b.push(u);
        c.push(t);
      }
    }
    const ratio = median(c) / median(b);
    return {
      name: 'engine transport: build + push of a 4 MB layer on one dockerd, TCP+TLS vs its Unix socket',
      baseline: { label: `unix socket (${unix.endpoint})`, medianMs: median(b), samples: b },
      candidate: { label: `TCP + mutual TLS (${tls.endpoint})`, medianMs: median(c), samples: c },
      ratio,
      target: 1.1,
      met: ratio <= 1.1,
    };
  } finally {
    await registry.stop();
  }
}
