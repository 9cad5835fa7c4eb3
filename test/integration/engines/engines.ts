/**
 * The test engines of scripts/engines/ (TLS dockerd, sshd in front of the main engine, Podman), and what the tests do
 * with each through dockerode built from a resolved EngineTarget: ping, build a tiny image on the stand-in Runtime
 * base, push it to a test registry.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { resolveEngineTarget, type EngineEnvironment, type EngineTarget } from '../../../src/image/engine-target.js';
import { nodeEngineFs } from '../../../src/image/engine-target-node.js';
import type { TestRegistry } from '../image/registry.js';

export type EngineScript = 'tls-dockerd' | 'sshd' | 'podman';

/** Runs `scripts/engines/<name>.sh start` (idempotent) and returns the env it prints. */
export function startEngine(name: EngineScript): Record<string, string> {
  const out = execFileSync('bash', [`scripts/engines/${name}.sh`, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

export const MAIN_SOCKET = '/var/run/docker.sock';

export async function targetFor(env: EngineEnvironment, containerBinary?: string): Promise<EngineTarget> {
  return resolveEngineTarget({ env, fs: nodeEngineFs, ...(containerBinary ? { containerBinary } : {}), uid: 0 });
}

export interface ProgressEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/** Every event of a build or push stream; failures arrive as events, not as a rejected stream. */
export async function followProgress(docker: Docker, stream: NodeJS.ReadableStream): Promise<ProgressEvent[]> {
  const events = await new Promise<ProgressEvent[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, result: ProgressEvent[]) => (error ? reject(error) : resolve(result))),
  );
  const failed = events.find((e) => e.error || e.errorDetail);
  if (failed) throw new Error(`engine reported: ${failed.error ?? failed.errorDetail?.message}`);
  return events;
}

/** A build context: FROM the base, a label unique to this build, one file. */
function tinyContext(base: string, marker: string): NodeJS.ReadableStream {
  const tar = pack();
  tar.entry({ name: 'Dockerfile' }, `FROM ${base}\nLABEL dev.astro-deploy-cli.engine-test=${marker}\nCOPY marker.txt /marker.txt\n`);
  tar.entry({ name: 'marker.txt' }, `${marker}\n`);
  tar.finalize();
  return tar as unknown as NodeJS.ReadableStream;
}

export interface BuiltImage {
  tag: string;
  marker: string;
  id: string;
}

export async function buildTinyImage(docker: Docker, base: string, repository: string): Promise<BuiltImage> {
  const marker = randomUUID();
  const tag = `${repository}:${marker.slice(0, 8)}`;
  const stream = await docker.buildImage(tinyContext(base, marker), { t: tag, platform: 'linux/amd64' });
  await followProgress(docker, stream);
  const info = await docker.getImage(tag).inspect();
  return { tag, marker, id: info.Id };
}

export async function pushImage(docker: Docker, tag: string, registry: TestRegistry): Promise<void> {
  // The repository in the path and the tag in the query, as the API defines it: Podman refuses `repo:tag` in the path.
  const colon = tag.lastIndexOf(':');
  const version = tag.slice(colon + 1);
  const stream = await docker.getImage(tag.slice(0, colon)).push({ tag: version, authconfig: { username: 'cli', password: registry.token, serveraddress: registry.host } });
  await followProgress(docker, stream);
}

/** Whether the engine behind `socketPath` has an image with this tag (Podman lists a short name as `docker.io/…`). */
export async function engineHasTag(socketPath: string, tag: string): Promise<boolean> {
  const images = await new Docker({ socketPath }).listImages();
  return images.some((image) => (image.RepoTags ?? []).some((t) => t === tag || t === `docker.io/${tag}`));
}

export interface ImageEvent {
  action: string;
  /** The image name the event is about (a push names the repository only). */
  name?: string;
  /** The image id, or for a push the full reference. */
  id: string;
}

/** Image events the engine behind `socketPath` recorded since `since` (seconds): its own account of the traffic. */
export async function imageEvents(socketPath: string, since: number): Promise<ImageEvent[]> {
  const docker = new Docker({ socketPath });
  const raw = (await (docker.getEvents as (options: object) => Promise<unknown>)({
    since,
    until: Math.floor(Date.now() / 1000) + 1,
    filters: { type: ['image'] },
  })) as unknown;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : typeof raw === 'string' ? raw : await streamText(raw as NodeJS.ReadableStream);
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { Action: string; id: string; Actor?: { Attributes?: { name?: string } } })
    .map((e) => ({ action: e.Action, id: e.id, ...(e.Actor?.Attributes?.name ? { name: e.Actor.Attributes.name } : {}) }));
}

async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

export async function removeTag(socketPath: string, tag: string): Promise<void> {
  await new Docker({ socketPath }).getImage(tag).remove({ force: true }).catch(() => undefined);
}
