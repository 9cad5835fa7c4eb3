/**
 * Starting and stopping the local platform: the programmatic API (temp state, files it writes, exclusive state dirs)
 * and the `cli.ts start|status|stop` commands that run it detached.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot, startStack, type Endpoints, type SeedTokens } from '../../platform/stack.js';
import { processAlive } from '../../../src/util/process.js';
import { removeDir } from './helpers.js';

const run = promisify(execFile);
const cli = (args: string[]) =>
  run(join(repoRoot, 'node_modules', '.bin', 'tsx'), [join(repoRoot, 'test', 'platform', 'cli.ts'), ...args], { cwd: repoRoot, timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout }),
    (e: { code?: number; stdout?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '' }),
  );

describe('startStack', () => {
  it('runs in a temp state dir with ephemeral ports, writes endpoints and tokens, and cleans up', async () => {
    const stack = await startStack({ ports: 0 });
    const endpoints = JSON.parse(readFileSync(join(stack.stateDir, 'endpoints.json'), 'utf8')) as Endpoints;
    const tokens = JSON.parse(readFileSync(endpoints.tokensFile, 'utf8')) as SeedTokens;
    expect(endpoints).toEqual(stack.endpoints);
    expect(tokens.apiTokens.map((t) => t.token)).toEqual(stack.tokens.apiTokens.map((t) => t.token));
    expect(tokens.apiTokens.filter((t) => t.expired)).toHaveLength(1);
    expect(endpoints.registry.host).toBe(`localhost:${endpoints.registry.port}`);
    expect(processAlive(endpoints.registry.pid) && processAlive(endpoints.blob.azuritePid)).toBe(true);

    await expect(startStack({ ports: 0, stateDir: stack.stateDir })).rejects.toThrow(/already used by a running stack/);

    await stack.stop();
    expect(existsSync(stack.stateDir)).toBe(false);
    expect(processAlive(endpoints.registry.pid) || processAlive(endpoints.blob.azuritePid)).toBe(false);
    await expect(fetch(endpoints.platform.authConfigUrl)).rejects.toThrow();
  });

  it('explains a busy port', async () => {
    const first = await startStack({ ports: 0 });
    const stateDir = mkdtempSync(join(tmpdir(), 'astro-platform-busy-'));
    try {
      await expect(
        startStack({ ports: { platform: first.endpoints.platform.port, registry: 0, houston: 0, blobProxy: 0, view: 0 }, stateDir }),
      ).rejects.toThrow(`port ${first.endpoints.platform.port} on 127.0.0.1 is already in use`);
    } finally {
      await first.stop();
      removeDir(stateDir);
    }
  });
});

describe('cli.ts', () => {
  it('starts detached, reports status, and stops everything it started', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'astro-platform-cli-'));
    try {
      const started = await cli(['start', '--state', stateDir, '--ephemeral', '--health-delay-ms', '50']);
      expect(started.code).toBe(0);
      expect(started.stdout).toContain('REST v1');
      const endpoints = JSON.parse(readFileSync(join(stateDir, 'endpoints.json'), 'utf8')) as Endpoints;
      expect(processAlive(endpoints.pid)).toBe(true);
      expect((await fetch(endpoints.platform.authConfigUrl)).status).toBe(200);
      expect(started.stdout).toContain(`Deployment View ${endpoints.view.url}`);
      expect((await fetch(`http://127.0.0.1:${endpoints.view.port}/`)).status).toBe(200);

      const status = await cli(['status', '--state', stateDir, '--json']);
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toEqual(endpoints);
      expect((await cli(['start', '--state', stateDir, '--ephemeral'])).stdout).toContain('already running');

      const stopped = await cli(['stop', '--state', stateDir]);
      expect(stopped.stdout).toContain('stopped');
      for (const pid of [endpoints.pid, endpoints.registry.pid, endpoints.blob.azuritePid]) expect(processAlive(pid)).toBe(false);
      expect((await cli(['status', '--state', stateDir])).code).toBe(3);
    } finally {
      await cli(['stop', '--state', stateDir]);
      removeDir(stateDir);
    }
  });
});
