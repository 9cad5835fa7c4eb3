// astro against Astronomer's CLI (the Go binary named by ASTRO_PEER_BIN, built from its public source; never part of
// this repo), interleaved, on the same local platform, parse skipped on both (ASTRONOMER_SKIP_PARSE=1): `--help`,
// `deploy --dags` of the example project and of 1,000 DAG files (unchanged, and with one DAG edited before each run),
// and a full image deploy with a warm build cache, of
// the project unchanged and with one file changed before each run (a new image for both CLIs); then the deploy rows
// again with 25 ms each way in front of the API, the registry and the blob store (bench/scripts/peer-platform.ts).
// Beside each total: the median per-phase timings of ours (--json timings) and the requests each CLI made on that path
// (the platform's request log), and Node's bare start (`node -e 0`) timed in the same loop, with ours less it against
// theirs, and how long the platform was busy with each CLI's requests (Node's bare start plus ours is a floor no code
// of ours can go below), and on the DAG-only rows the least a Node program does on that path
// (bench/scripts/node-floor.cjs). Both CLIs run without NODE_EXTRA_CA_CERTS (see below). Targets: <= 1.0x, and <= 0.8x
// on the WAN rows. Requires `npm run build` and a provisioned machine (Docker engine, registry, Azurite, the stand-in
// Runtime image).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { provisioned } from '../test/helpers/provisioned.js';
import { benchEnv, median, platformBusyMs, type Comparison } from './lib.js';
import type { PeerPlatform } from './scripts/peer-platform.js';

const ORGANIZATION = 'clorgstellar0000000000000';
const DEPLOYMENT = 'cldepdagon000000000000000';
const WORKSPACE = 'clwksdataplatform00000000';
const TOKEN_ID = 'cltokwsdataplatform000000';
const WAN_MS = 25;
const RUNS = Number(process.env.PEER_BENCH_RUNS ?? 7);

interface Side {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called before each run, outside its time (e.g. a project file changed, so that the image changes). */
  before?: () => void;
}

async function startPlatform(wanMs: number): Promise<{ platform: PeerPlatform; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('bench/scripts/peer-platform.ts'), '--wan-ms', String(wanMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (c: Buffer) => {
      buffered += c.toString();
      const newline = buffered.indexOf('\n');
      if (newline !== -1) resolve(buffered.slice(0, newline));
    });
    void exited.then(() => reject(new Error('the bench platform exited before it was ready')));
  });
  return {
    platform: JSON.parse(line) as PeerPlatform,
    stop: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

function runOnce(side: Side): { ms: number; stdout: string } {
  side.before?.();
  const start = process.hrtime.bigint();
  const result = spawnSync(side.command, side.args, {
    cwd: side.cwd,
    env: side.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0)
    throw new Error(`${side.command} ${side.args.join(' ')} exited with ${result.status ?? result.signal}:\n${result.stderr.slice(-2000)}`);
  return { ms, stdout: result.stdout };
}

/**
 * Node's start on its own (`node -e 0`, same environment), timed in the same loop: the part of ours that no code of
 * ours can remove. Ours less this, against theirs, is how far the rest of ours is from theirs.
 */
const nodeAlone = (env: NodeJS.ProcessEnv): Side => ({ command: process.execPath, args: ['-e', '0'], env });

interface LoggedRequest {
  listener: string;
  method: string;
  path: string;
  startedAtMs?: number;
  finishedAtMs?: number;
}

/** The platform's request log since `since` (curl, not fetch: a kept-alive connection goes stale while the timed runs block this process). */
function requestsSince(platform: PeerPlatform, since?: number): { lastSeq: number; requests: LoggedRequest[] } {
  const url = `${platform.endpoints.platform.url}/_platform/requests${since === undefined ? '' : `?since=${since}`}`;
  const answer = JSON.parse(execFileSync('curl', ['-sf', url], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as {
    lastSeq: number;
    requests?: LoggedRequest[];
  };
  // Registry notifications are the registry talking to the platform, not the CLI.
  return { lastSeq: answer.lastSeq, requests: (answer.requests ?? []).filter((r) => r.path !== '/registry/events') };
}

/**
 * Both CLIs and Node's bare start, alternating; ours with --json where it deploys, for its phase timings. With the
 * platform, also how long it was busy with each run's requests (read between runs, outside the timing).
 */
function interleave(name: string, theirs: Side, ours: Side, target: number, details: string[], platform?: PeerPlatform, leastNode?: Side): Comparison {
  const bare = nodeAlone(ours.env);
  runOnce(theirs);
  runOnce(ours);
  runOnce(bare);
  if (leastNode) runOnce(leastNode);
  const t: number[] = [];
  const o: number[] = [];
  const n: number[] = [];
  const l: number[] = [];
  const phases = new Map<string, number[]>();
  const busy = { theirs: [] as number[], ours: [] as number[] };
  let seq = platform ? requestsSince(platform).lastSeq : 0;
  const platformTime = (into: number[]) => {
    if (!platform) return;
    const log = requestsSince(platform, seq);
    seq = log.lastSeq;
    into.push(platformBusyMs(log.requests));
  };
  for (let i = 0; i < RUNS; i++) {
    t.push(runOnce(theirs).ms);
    platformTime(busy.theirs);
    const run = runOnce(ours);
    o.push(run.ms);
    platformTime(busy.ours);
    n.push(runOnce(bare).ms);
    if (leastNode) l.push(runOnce(leastNode).ms);
    if (ours.args.includes('--json')) {
      const timings = (JSON.parse(run.stdout) as { timings?: Record<string, number> }).timings ?? {};
      for (const [phase, ms] of Object.entries(timings)) phases.set(phase, [...(phases.get(phase) ?? []), ms]);
    }
  }
  if (phases.size > 0) details.unshift(`ours by phase (medians): ${[...phases].map(([p, ms]) => `${p} ${median(ms).toFixed(0)} ms`).join(', ')}`);
  const rest = median(o) - median(n);
  details.push(
    `Node's bare start (node -e 0) ${median(n).toFixed(1)} ms = ${(median(n) / median(t)).toFixed(2)}x theirs; ours less it ${rest.toFixed(1)} ms = ${(rest / median(t)).toFixed(2)}x theirs`,
  );
  if (leastNode) {
    details.push(
      `the least a Node program does on this path (bench/scripts/node-floor.cjs: the same requests over node:http, the DAG files read and gzipped, ` +
        `connections opened at its start, nothing checked or printed): ${median(l).toFixed(1)} ms = ${(median(l) / median(t)).toFixed(2)}x theirs; ours is ${(median(o) / median(l)).toFixed(2)}x it`,
    );
  }
  if (platform) {
    const floor = median(n) + median(busy.ours);
    details.push(
      `the platform busy answering (medians, overlaps counted once): theirs ${median(busy.theirs).toFixed(1)} ms, ours ${median(busy.ours).toFixed(1)} ms; ` +
        `floor for ours, Node's bare start + that: ${floor.toFixed(1)} ms = ${(floor / median(t)).toFixed(2)}x theirs` +
        (ours.args.includes('--dags') ? '' : " (the engine's build and push not counted)") +
        (platform.apiUrl === platform.endpoints.platform.url ? '' : " (the WAN's round trips not counted)"),
    );
  }
  const ratio = median(o) / median(t);
  return {
    name,
    baseline: { label: 'Astronomer CLI', medianMs: median(t), samples: t },
    candidate: { label: 'astro', medianMs: median(o), samples: o },
    ratio,
    target,
    met: ratio <= target,
    details,
  };
}

/** Requests one run made to the platform, the blob store and the registry's token endpoint, by kind. */
function countRequests(platform: PeerPlatform, side: Side): string {
  const since = requestsSince(platform).lastSeq;
  runOnce(side);
  const mine = requestsSince(platform, since).requests;
  const api = mine.filter((r) => r.listener === 'platform' && r.path !== '/registry/token').length;
  const blob = mine.filter((r) => r.listener === 'blob-proxy').length;
  const token = mine.filter((r) => r.path === '/registry/token').length;
  return `${mine.length} (API ${api}, blob ${blob}${token ? `, registry token ${token}` : ''})`;
}

function skipped(name: string, why: string): Comparison {
  return {
    name: `${name} (skipped: ${why})`,
    baseline: { label: 'Astronomer CLI', medianMs: 0, samples: [] },
    candidate: { label: 'astro', medianMs: 0, samples: [] },
    ratio: 0,
    target: 1,
    met: false,
  };
}

export default async function run(): Promise<Comparison[]> {
  const peer = process.env.ASTRO_PEER_BIN;
  if (!peer || !fs.existsSync(peer)) {
    console.log('peer: ASTRO_PEER_BIN is not set (or not a file): skipped the Astronomer CLI rows.');
    return [skipped('astro vs Astronomer CLI', 'ASTRO_PEER_BIN not set')];
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-bench-peer-'));
  const results: Comparison[] = [];
  try {
    const example = path.join(work, 'example');
    fs.cpSync(path.resolve('fixtures/example-project'), example, { recursive: true });
    // Astronomer's CLI adds `--pull` for an astrocrpublic FROM line, which the stand-in Runtime image cannot satisfy.
    fs.writeFileSync(path.join(example, 'Dockerfile'), `FROM --platform=linux/amd64 ${provisioned().RUNTIME_IMAGE}\n`);
    // A project whose image changes on every run (one file in include/), for both CLIs: the engine pushes a new layer.
    const changing = path.join(work, 'changing');
    fs.cpSync(example, changing, { recursive: true });
    let changes = 0;
    const changeOneFile = () => fs.writeFileSync(path.join(changing, 'include', 'changed.txt'), `run ${++changes} ${process.pid}\n`);
    const thousand = path.join(work, 'thousand');
    fs.cpSync(example, thousand, { recursive: true });
    fs.rmSync(path.join(thousand, 'dags'), { recursive: true });
    const generated = path.join(work, 'generated');
    execFileSync(process.execPath, [path.resolve('fixtures/parse/generate-bench-project.mjs'), generated, '1000'], { stdio: 'ignore' });
    fs.cpSync(path.join(generated, 'dags'), path.join(thousand, 'dags'), { recursive: true });
    // The same 1,000 files with one DAG rewritten before every run, for both CLIs: astro keeps the bundle of a DAGs
    // folder nobody wrote to (bundle/bundle-cache.ts), which the row above redeploys; this one shows an edit.
    const thousandEdited = path.join(work, 'thousand-edited');
    fs.cpSync(thousand, thousandEdited, { recursive: true });
    const editedDag = path.join(thousandEdited, 'dags', fs.readdirSync(path.join(thousandEdited, 'dags')).sort()[0]!);
    const editedText = fs.readFileSync(editedDag, 'utf8');
    const editOneDag = () => fs.writeFileSync(editedDag, `${editedText}\n# run ${++changes}\n`);

    // Both CLIs run without NODE_EXTRA_CA_CERTS (benchEnv; Go ignores it); Node's bare start with it is timed beside
    // the --help row.
    const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;
    const common = benchEnv({
      ASTRONOMER_SKIP_PARSE: '1',
      NO_COLOR: '1',
      DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}`,
      // Nothing leaves the machine: Astronomer's CLI checks for updates and sends telemetry.
      HTTPS_PROXY: 'http://127.0.0.1:9',
      NO_PROXY: 'localhost,127.0.0.1',
      ASTRO_TELEMETRY_DISABLED: '1',
    });
    const bin = path.resolve('bin/astro.js');
    const help = interleave(
      'astro --help vs Astronomer CLI --help',
      { command: peer, args: ['--help'], env: { ...common, HOME: path.join(work, 'help-home') } },
      { command: process.execPath, args: [bin, '--help'], env: { ...common, ASTRO_HOME: path.join(work, 'help-home') } },
      1.0,
      [],
    );
    if (extraCaCerts) {
      const without = nodeAlone(common);
      const withCa = nodeAlone({ ...common, NODE_EXTRA_CA_CERTS: extraCaCerts });
      const times = { without: [] as number[], with: [] as number[] };
      for (let i = 0; i < RUNS; i++) {
        times.without.push(runOnce(without).ms);
        times.with.push(runOnce(withCa).ms);
      }
      help.details?.push(
        `this machine sets NODE_EXTRA_CA_CERTS=${extraCaCerts}; the runs here leave it out. Node's bare start with it: ${median(times.with).toFixed(1)} ms, without: ${median(times.without).toFixed(1)} ms`,
      );
    }
    results.push(help);

    for (const wanMs of [0, WAN_MS]) {
      const { platform, stop } = await startPlatform(wanMs);
      try {
        const token = platform.tokens.apiTokens.find((t) => t.id === TOKEN_ID)!.token;
        const ourHome = path.join(work, `our-home-${wanMs}`);
        const theirHome = path.join(work, `their-home-${wanMs}`);
        fs.mkdirSync(path.join(ourHome, '.astro'), { recursive: true });
        fs.mkdirSync(path.join(theirHome, '.astro'), { recursive: true });
        fs.writeFileSync(path.join(ourHome, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${platform.apiUrl}\n`);
        fs.writeFileSync(
          path.join(theirHome, '.astro', 'config.yaml'),
          `context: localhost\ncontexts:\n  localhost:\n    domain: localhost\n    workspace: ${WORKSPACE}\nlocal:\n  core: ${platform.apiUrl}\n  registry: ${platform.registryHost}\n`,
        );
        const before = (cwd: string) => (cwd === changing ? { before: changeOneFile } : cwd === thousandEdited ? { before: editOneDag } : {});
        const ours = (cwd: string, extra: string[]): Side => ({
          command: process.execPath,
          args: [bin, 'deploy', DEPLOYMENT, ...extra, '--json'],
          cwd,
          env: { ...common, ASTRO_HOME: ourHome, ASTRO_API_TOKEN: token, ASTRO_CACHE_DIR: path.join(ourHome, 'cache') },
          ...before(cwd),
        });
        const theirs = (cwd: string, extra: string[]): Side => ({
          command: peer,
          args: ['deploy', DEPLOYMENT, ...extra],
          cwd,
          env: { ...common, HOME: theirHome, ASTRO_API_TOKEN: token },
          ...before(cwd),
        });
        const where = wanMs > 0 ? `, WAN (+${wanMs} ms each way)` : '';
        const target = wanMs > 0 ? 0.8 : 1.0;
        const rows: [string, string, string[]][] = [
          [`deploy --dags, example project (2 DAGs)${where}`, example, ['--dags']],
          [`deploy --dags, 1,000 DAG files${where}`, thousand, ['--dags']],
          [`deploy --dags, 1,000 DAG files, one edited${where}`, thousandEdited, ['--dags']],
          // Unchanged: astro's earlier push of this very image is remembered, so the registry only gets the new tag.
          [`full image deploy, warm build cache${where}`, example, ['-f']],
          [`full image deploy, one file changed${where}`, changing, ['-f']],
        ];
        for (const [name, cwd, extra] of rows) {
          try {
            const details = [
              `requests per deploy: Astronomer CLI ${countRequests(platform, theirs(cwd, extra))}, astro ${countRequests(platform, ours(cwd, extra))}`,
            ];
            // DAG-only rows: what Node itself costs on that path, timed in the same loop.
            const leastNode: Side | undefined = extra.includes('--dags')
              ? {
                  command: process.execPath,
                  args: [
                    path.resolve('bench/scripts/node-floor.cjs'),
                    platform.apiUrl,
                    ORGANIZATION,
                    DEPLOYMENT,
                    path.join(cwd, 'dags'),
                    new URL(platform.blobUrl).origin,
                  ],
                  cwd,
                  env: { ...common, ASTRO_API_TOKEN: token },
                }
              : undefined;
            const result = interleave(name, theirs(cwd, extra), ours(cwd, extra), target, details, platform, leastNode);
            console.log(`${result.name}: ${result.ratio.toFixed(2)}x`);
            results.push(result);
          } catch (error) {
            // One broken row (e.g. a CLI that failed a run) must not hide the others' numbers.
            results.push(skipped(name, `a run failed: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`));
          }
        }
      } finally {
        await stop();
      }
    }
    return results;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
