/**
 * Shared helpers for the local platform's integration tests: a stack in a temp dir on ephemeral ports, a small HTTP
 * client, tiny images built and pushed through the real Docker engine, and DAG bundles.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { startStack, type Stack, type StackOptions } from '../../platform/stack.js';

export const ids = {
  orgStellar: 'clorgstellar0000000000000',
  orgNebula: 'clorgnebula00000000000000',
  wsData: 'clwksdataplatform00000000',
  wsAnalytics: 'clwksanalytics00000000000',
  wsOps: 'clwksoperations0000000000',
  depDagOn: 'cldepdagon000000000000000',
  depDagOff: 'cldepdagoff00000000000000',
  depCicd: 'cldepcicd0000000000000000',
  depHybrid: 'cldephybrid00000000000000',
  depAirflow2: 'cldepaf200000000000000000',
  userAda: 'clusrada00000000000000000',
  userGrace: 'clusrgrace000000000000000',
  swWorkspaceA: 'ckwkssoftwarea00000000000',
  swWorkspaceB: 'ckwkssoftwareb00000000000',
  swImage: 'ckdepimage000000000000000',
  swDagDeploy: 'ckdepdagdeploy00000000000',
  swTeamB: 'ckdepteamb00000000000000',
} as const;

export interface TestStack {
  stack: Stack;
  stateDir: string;
  /** `fetch` against the platform listener; JSON bodies are serialised. */
  api(path: string, init?: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> }): Promise<ApiResponse>;
  token(id: string): string;
  stop(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export async function readResponse(response: Response): Promise<ApiResponse> {
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

export async function startTestStack(options: StackOptions = {}, stateDir?: string): Promise<TestStack> {
  const dir = stateDir ?? mkdtempSync(join(tmpdir(), 'astro-platform-test-'));
  const stack = await startStack({ stateDir: dir, ports: 0, healthDelayMs: 100, ...options });
  const base = `http://127.0.0.1:${stack.endpoints.platform.port}`;
  return {
    stack,
    stateDir: dir,
    async api(path, init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      if (init.token) headers.authorization = `Bearer ${init.token}`;
      let body: string | undefined;
      if (init.body !== undefined) {
        body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
        headers['content-type'] ??= 'application/json';
      }
      return readResponse(await fetch(`${base}${path}`, { method: init.method ?? 'GET', headers, body }));
    },
    token(id: string) {
      const found = stack.tokens.apiTokens.find((t) => t.id === id);
      if (!found) throw new Error(`no seed token ${id}`);
      return found.token;
    },
    stop: () => stack.stop(),
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

// ---- Docker ---------------------------------------------------------------------------------------------------

export const docker = new Docker({ socketPath: '/var/run/docker.sock' });

async function followProgress(stream: NodeJS.ReadableStream): Promise<{ events: any[]; error?: string }> {
  const events: any[] = await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))));
  const failed = events.find((e) => e.error || e.errorDetail);
  return { events, error: failed ? String(failed.error ?? failed.errorDetail?.message) : undefined };
}

/** Builds a FROM-scratch image (no pull needed). `nocache` matters for non-amd64: a cached layer keeps its arch. */
export async function buildTinyImage(tag: string, options: { platform?: string; labels?: Record<string, string>; content?: string } = {}) {
  const context = pack();
  const labels = Object.entries(options.labels ?? {})
    .map(([k, v]) => `LABEL ${k}="${v}"\n`)
    .join('');
  context.entry({ name: 'Dockerfile' }, `FROM scratch\nCOPY hello.txt /hello.txt\n${labels}`);
  context.entry({ name: 'hello.txt' }, options.content ?? `hello from ${tag} at ${Date.now()}\n`);
  context.finalize();
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
    t: tag,
    platform: options.platform ?? 'linux/amd64',
    nocache: true,
    rm: true,
  });
  const { error } = await followProgress(stream);
  if (error) throw new Error(`docker build of ${tag} failed: ${error}`);
}

/** Pushes through the engine; resolves with the engine's error text instead of throwing, so refusals can be asserted. */
export async function pushImage(ref: string, auth: { username: string; password: string; serveraddress: string }): Promise<{ error?: string }> {
  const colon = ref.lastIndexOf(':');
  const stream = await docker.getImage(ref).push({ tag: ref.slice(colon + 1), authconfig: auth });
  return followProgress(stream);
}

export async function removeImage(ref: string): Promise<void> {
  await docker
    .getImage(ref)
    .remove({ force: true })
    .catch(() => undefined);
}

// ---- DAG bundles ----------------------------------------------------------------------------------------------

export async function dagBundle(files: Record<string, string>): Promise<Buffer> {
  const tar = pack();
  for (const [name, content] of Object.entries(files)) tar.entry({ name }, content);
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar as AsyncIterable<Buffer>) chunks.push(chunk);
  return gzipSync(Buffer.concat(chunks));
}

export const sampleDag = `from airflow.sdk import dag\n\n@dag(schedule=None)\ndef hello():\n    pass\n\nhello()\n`;

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
