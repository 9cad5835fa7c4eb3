/**
 * `tsx test/platform/cli.ts start|stop|status [options]`
 *
 * start   runs the platform detached in the background, waits until it is healthy, prints where everything is
 *         (also written to <state>/endpoints.json; seed tokens in <state>/tokens.json) and returns.
 * stop    stops what `start` started (the runner, and through it the registry and Azurite).
 * status  prints endpoints.json when the platform is running; exit code 3 when it is not.
 * run     the foreground runner `start` launches (useful for debugging).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultStateDir, demoPorts, startStack, type Endpoints, type StackOptions } from './stack.js';

const usage = `usage: tsx test/platform/cli.ts <start|stop|status|run> [options]

options:
  --state DIR             state directory (default .state/platform)
  --port N                platform REST + auth port (default ${demoPorts.platform})
  --registry-port N       registry port (default ${demoPorts.registry})
  --houston-port N        Houston + DAG server port (default ${demoPorts.houston})
  --blob-port N           blob proxy port (default ${demoPorts.blobProxy})
  --view-port N           Deployment View port (default ${demoPorts.view})
  --ephemeral             use free ports for everything
  --seed FILE             seed file (default test/platform/seed.json)
  --public-host HOST      host name in URLs handed to clients (default localhost)
  --health-delay-ms N     DEPLOYING -> HEALTHY delay after finalize (default 3000)
  --sas-ttl-seconds N     lifetime of DAG upload SAS URLs (default 900)
  --platform-version V    Houston appConfig version (default from the seed, 1.0.0)
  --json                  status: print endpoints.json only
  --timeout-seconds N     start: how long to wait for health (default 90)`;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      state: { type: 'string' },
      port: { type: 'string' },
      'registry-port': { type: 'string' },
      'houston-port': { type: 'string' },
      'blob-port': { type: 'string' },
      'view-port': { type: 'string' },
      ephemeral: { type: 'boolean' },
      seed: { type: 'string' },
      'public-host': { type: 'string' },
      'health-delay-ms': { type: 'string' },
      'sas-ttl-seconds': { type: 'string' },
      'platform-version': { type: 'string' },
      json: { type: 'boolean' },
      'timeout-seconds': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const int = (name: string, value: string | undefined, min = 0): number | undefined => {
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value) || Number(value) < min) fail(`--${name} must be a whole number >= ${min}, got ${value}`, 2);
    return Number(value);
  };
  const port = (name: string, value: string | undefined) => {
    const n = int(name, value);
    if (n !== undefined && n > 65535) fail(`--${name} must be at most 65535`, 2);
    return n;
  };
  const stateDir = resolve(values.state ?? defaultStateDir);
  const ports = values.ephemeral
    ? (0 as const)
    : Object.fromEntries(
        Object.entries({
          platform: port('port', values.port),
          registry: port('registry-port', values['registry-port']),
          houston: port('houston-port', values['houston-port']),
          blobProxy: port('blob-port', values['blob-port']),
          view: port('view-port', values['view-port']),
        }).filter(([, v]) => v !== undefined),
      );
  const stackOptions: StackOptions = {
    stateDir,
    ports,
    ...(values.seed ? { seed: resolve(values.seed) } : {}),
    ...(values['public-host'] ? { publicHost: values['public-host'] } : {}),
    ...(values['health-delay-ms'] ? { healthDelayMs: int('health-delay-ms', values['health-delay-ms']) } : {}),
    ...(values['sas-ttl-seconds'] ? { sasTtlSeconds: int('sas-ttl-seconds', values['sas-ttl-seconds'], 1) } : {}),
    ...(values['platform-version'] ? { platformVersion: values['platform-version'] } : {}),
  };
  return {
    command: positionals[0],
    stackOptions,
    stateDir,
    json: values.json ?? false,
    help: values.help ?? false,
    timeoutMs: (int('timeout-seconds', values['timeout-seconds'], 1) ?? 90) * 1000,
    passthrough: argv.slice(1),
  };
}

function readEndpoints(stateDir: string): Endpoints | undefined {
  const file = join(stateDir, 'endpoints.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Endpoints;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Only kill a recorded pid if it still is the program we started (pids get reused). */
function isOurs(pid: number, expected: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(expected);
  } catch {
    return false;
  }
}

async function healthy(endpoints: Endpoints): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${endpoints.platform.port}/_platform/health`, { signal: AbortSignal.timeout(2_000) });
    return response.ok;
  } catch {
    return false;
  }
}

function summary(e: Endpoints): string {
  return [
    `local Astronomer platform running (pid ${e.pid}), state in ${e.stateDir}`,
    `  REST v1       ${e.platform.restUrl}`,
    `  auth config   ${e.platform.authConfigUrl}`,
    `  Houston       ${e.houston.graphqlUrl} (DAG server ${e.houston.dagServerUrlPattern})`,
    `  registry      ${e.registry.host}`,
    `  blob proxy    ${e.blob.proxyUrl}`,
    `  Deployment View ${e.view?.url ?? '(none)'}`,
    `  updates feed  ${e.platform.updatesFeedUrl}`,
    `  inspection    ${e.platform.inspectionUrl}/state, ${e.platform.inspectionUrl}/requests`,
    `  endpoints     ${join(e.stateDir, 'endpoints.json')}`,
    `  seed tokens   ${e.tokensFile}`,
  ].join('\n');
}

async function run(options: StackOptions): Promise<void> {
  const stack = await startStack(options);
  process.stdout.write(`${summary(stack.endpoints)}\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`received ${signal}, stopping\n`);
    stack.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`error while stopping: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function start(stateDir: string, passthrough: string[], timeoutMs: number): Promise<void> {
  const existing = readEndpoints(stateDir);
  if (existing && alive(existing.pid) && (await healthy(existing))) {
    process.stdout.write(`already running\n${summary(existing)}\n`);
    return;
  }
  if (existing) await stopRecorded(existing);

  const logPath = join(stateDir, 'platform.log');
  mkdirSync(stateDir, { recursive: true });
  const logFd = openSync(logPath, 'a');
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), 'run', ...passthrough], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    cwd: process.cwd(),
  });
  closeSync(logFd);
  child.unref();
  let exitCode: number | null = null;
  child.once('exit', (code) => {
    exitCode = code ?? 1;
  });

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const endpoints = readEndpoints(stateDir);
    if (endpoints && endpoints.pid === child.pid && (await healthy(endpoints))) {
      process.stdout.write(`${summary(endpoints)}\n`);
      return;
    }
    if (exitCode !== null) {
      const log = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n') : '';
      fail(`the platform exited during startup (code ${exitCode}); last lines of ${logPath}:\n${log}`);
    }
    if (Date.now() > deadline) {
      if (child.pid) process.kill(child.pid, 'SIGTERM');
      fail(`the platform did not become healthy within ${timeoutMs / 1000}s; see ${logPath}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** Stops the runner; if it is gone or hung, stops the registry and Azurite it left behind. */
async function stopRecorded(endpoints: Endpoints): Promise<boolean> {
  let wasRunning = false;
  if (alive(endpoints.pid) && isOurs(endpoints.pid, 'cli.ts')) {
    wasRunning = true;
    process.kill(endpoints.pid, 'SIGTERM');
    if (!(await waitGone(endpoints.pid, 15_000))) process.kill(endpoints.pid, 'SIGKILL');
  }
  for (const [pid, name] of [
    [endpoints.registry.pid, 'docker-registry'],
    [endpoints.blob.azuritePid, 'azurite'],
  ] as const) {
    if (alive(pid) && isOurs(pid, name)) {
      wasRunning = true;
      process.kill(pid, 'SIGTERM');
      if (!(await waitGone(pid, 5_000))) process.kill(pid, 'SIGKILL');
    }
  }
  rmSync(join(endpoints.stateDir, 'endpoints.json'), { force: true });
  return wasRunning;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args.help || !args.command) {
    process.stdout.write(`${usage}\n`);
    if (!args.help) process.exit(2);
    return;
  }
  switch (args.command) {
    case 'run':
      await run(args.stackOptions);
      return;
    case 'start':
      await start(args.stateDir, args.passthrough, args.timeoutMs);
      return;
    case 'stop': {
      const endpoints = readEndpoints(args.stateDir);
      if (!endpoints) {
        process.stdout.write(`not running (no ${join(args.stateDir, 'endpoints.json')})\n`);
        return;
      }
      const was = await stopRecorded(endpoints);
      process.stdout.write(was ? 'stopped\n' : 'not running (removed stale endpoints.json)\n');
      return;
    }
    case 'status': {
      const endpoints = readEndpoints(args.stateDir);
      if (!endpoints || !alive(endpoints.pid) || !(await healthy(endpoints))) {
        process.stdout.write(args.json ? 'null\n' : 'not running\n');
        process.exit(3);
      }
      process.stdout.write(args.json ? `${JSON.stringify(endpoints, null, 2)}\n` : `${summary(endpoints)}\n`);
      return;
    }
    default:
      fail(`unknown command ${args.command}\n${usage}`, 2);
  }
}

main().catch((error: unknown) => fail(`error: ${(error as Error).message}`));
