/**
 * The two real components behind the platform: Debian's `docker-registry` (distribution 2.8) with token auth, and
 * Azurite's blob service. Both are started with port 0 when asked, and the port they really bound is read from
 * their own startup line, so several stacks can run side by side without guessing free ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ManagedProcess {
  name: string;
  pid: number;
  port: number;
  logPath: string;
  stop(): Promise<void>;
}

interface StartOptions {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  logPath: string;
  /** Extracts the bound port from an output line. */
  portFrom: (line: string) => number | undefined;
  timeoutMs: number;
}

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** A crashed or killed test runner must not leave registries and Azurites behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}

function startProcess(options: StartOptions): Promise<ManagedProcess> {
  installExitHook();
  return new Promise((resolve, reject) => {
    const log = createWriteStream(options.logPath, { flags: 'a' });
    let child: ChildProcess;
    try {
      child = spawn(options.command, options.args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      reject(new Error(`cannot start ${options.name} (${options.command}): ${(error as Error).message}`));
      return;
    }
    liveChildren.add(child);
    let settled = false;
    let buffered = '';
    const tail: string[] = [];

    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    const stop = async () => {
      liveChildren.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      log.end();
    };

    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop();
      reject(new Error(`${message}\n--- last output of ${options.name} (${options.logPath}) ---\n${tail.join('\n')}`));
    };

    const onData = (chunk: Buffer) => {
      log.write(chunk);
      if (settled) return;
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 30) tail.shift();
        const port = options.portFrom(line);
        if (port !== undefined) {
          settled = true;
          clearTimeout(timer);
          resolve({ name: options.name, pid: child.pid!, port, logPath: options.logPath, stop });
          return;
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (error: NodeJS.ErrnoException) =>
      fail(error.code === 'ENOENT' ? `${options.name}: ${options.command} is not installed` : `${options.name} failed to start: ${error.message}`),
    );
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      fail(`${options.name} exited during startup (code ${code}, signal ${signal})`);
    });
    const timer = setTimeout(() => fail(`${options.name} did not report a listening port within ${options.timeoutMs} ms`), options.timeoutMs);
  });
}

export interface RegistryOptions {
  bin: string;
  dir: string;
  port: number;
  realm: string;
  service: string;
  issuer: string;
  rootCertBundle: string;
  notificationsUrl: string;
  notificationSecret: string;
}

export async function startRegistry(options: RegistryOptions): Promise<ManagedProcess> {
  mkdirSync(join(options.dir, 'data'), { recursive: true });
  const configPath = join(options.dir, 'config.yml');
  // JSON is valid YAML, and needs no quoting rules of its own.
  const config = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(options.dir, 'data') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${options.port}`, headers: { 'X-Content-Type-Options': ['nosniff'] } },
    auth: {
      token: { realm: options.realm, service: options.service, issuer: options.issuer, rootcertbundle: options.rootCertBundle },
    },
    notifications: {
      endpoints: [
        {
          name: 'local-platform',
          url: options.notificationsUrl,
          headers: { Authorization: [`Bearer ${options.notificationSecret}`] },
          timeout: '2s',
          threshold: 3,
          backoff: '1s',
        },
      ],
    },
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const registry = await startProcess({
    name: 'docker-registry',
    command: options.bin,
    args: ['serve', configPath],
    cwd: options.dir,
    logPath: join(options.dir, 'registry.log'),
    portFrom: (line) => {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      return match ? Number(match[1]) : undefined;
    },
    timeoutMs: 15_000,
  });
  await waitForRegistry(`http://127.0.0.1:${registry.port}`, registry);
  return registry;
}

async function waitForRegistry(url: string, registry: ManagedProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
      // 401 with a Bearer challenge means the token auth configuration was accepted.
      if (response.status === 401 && /bearer/i.test(response.headers.get('www-authenticate') ?? '')) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) {
      await registry.stop();
      throw new Error(`docker-registry on ${url} did not answer /v2/ with a token challenge; see ${registry.logPath}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface AzuriteOptions {
  bin: string;
  dir: string;
  port: number;
}

export function startAzurite(options: AzuriteOptions): Promise<ManagedProcess> {
  mkdirSync(join(options.dir, 'data'), { recursive: true });
  return startProcess({
    name: 'azurite-blob',
    command: options.bin,
    args: [
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(options.port),
      '--location',
      join(options.dir, 'data'),
      '--disableTelemetry',
      '--skipApiVersionCheck',
    ],
    cwd: options.dir,
    logPath: join(options.dir, 'azurite.log'),
    portFrom: (line) => {
      const match = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      return match ? Number(match[1]) : undefined;
    },
    timeoutMs: 30_000,
  });
}
