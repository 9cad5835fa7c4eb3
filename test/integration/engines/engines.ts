/**
 * The test engines of scripts/engines/ (TLS dockerd, sshd in front of the main engine, Podman), and what the tests do
 * with each through astro's own client (src/image/connect.ts) built from a resolved EngineTarget: ping, build a tiny
 * image on the stand-in Runtime base, push it to a test registry. dockerode only observes, on each engine's own
 * Unix socket, where the traffic landed.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { engineFor } from '../../../src/image/connect.js';
import type { EngineMessage, ImageEngine } from '../../../src/image/engine.js';
import { resolveEngineTarget, type EngineEnvironment, type EngineTarget } from '../../../src/image/engine-target.js';
import { nodeEngineFs } from '../../../src/image/engine-target-node.js';
import type { TestRegistry } from '../image/registry.js';

export type EngineScript = 'tls-dockerd' | 'sshd' | 'podman';

/**
 * Runs `scripts/engines/<name>.sh start` (idempotent) and returns the env it prints. `runtimeImage` names the image
 * the script copies from the main engine (the Runtime base by default).
 */
export function startEngine(name: EngineScript, runtimeImage?: string): Record<string, string> {
  const out = execFileSync('bash', [`scripts/engines/${name}.sh`, 'start'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(runtimeImage ? { env: { ...process.env, RUNTIME_BASE_IMAGE: runtimeImage } } : {}),
  });
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

/** The target and astro's client for it, as connectEngine builds them. */
export async function clientFor(env: EngineEnvironment, containerBinary?: string): Promise<{ target: EngineTarget; engine: ImageEngine }> {
  const target = await targetFor(env, containerBinary);
  return { target, engine: engineFor(target) };
}

/** What a call failed with (the test expects it to fail). */
export async function failure(call: Promise<unknown>): Promise<Error> {
  return call.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error as Error,
  );
}

/** Every message of a build or push stream; failures arrive as messages, not as a rejected stream. */
export async function followProgress(stream: AsyncIterable<EngineMessage>): Promise<EngineMessage[]> {
  const messages: EngineMessage[] = [];
  for await (const message of stream) messages.push(message);
  const failed = messages.find((m) => m.error || m.errorDetail);
  if (failed) throw new Error(`engine reported: ${failed.error ?? failed.errorDetail?.message}`);
  return messages;
}

/** A build context: FROM the base, a label unique to this build, one file. */
function tinyContext(base: string, marker: string): Readable {
  const tar = pack();
  tar.entry({ name: 'Dockerfile' }, `FROM ${base}\nLABEL dev.astro-deploy-cli.engine-test=${marker}\nCOPY marker.txt /marker.txt\n`);
  tar.entry({ name: 'marker.txt' }, `${marker}\n`);
  tar.finalize();
  return tar as unknown as Readable;
}

export interface BuiltImage {
  tag: string;
  marker: string;
  id: string;
}

export async function buildTinyImage(engine: ImageEngine, base: string, repository: string): Promise<BuiltImage> {
  const marker = randomUUID();
  const tag = `${repository}:${marker.slice(0, 8)}`;
  await followProgress(engine.build({ context: tinyContext(base, marker), tag, dockerfile: 'Dockerfile', platform: 'linux/amd64' }));
  const info = await engine.inspect(tag);
  if (!info) throw new Error(`the engine has no image ${tag} after building it`);
  return { tag, marker, id: info.id };
}

export async function pushImage(engine: ImageEngine, tag: string, registry: TestRegistry): Promise<void> {
  await followProgress(engine.push(tag, { username: 'cli', password: registry.token, serveraddress: registry.host }));
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
export async function imageEvents(socketPath: string, since: number, type: 'image' | 'container' = 'image'): Promise<ImageEvent[]> {
  const docker = new Docker({ socketPath });
  const raw = (await (docker.getEvents as (options: object) => Promise<unknown>)({
    since,
    until: Math.floor(Date.now() / 1000) + 1,
    filters: { type: [type] },
  })) as unknown;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : typeof raw === 'string' ? raw : await streamText(raw as NodeJS.ReadableStream);
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { Action: string; id: string; Actor?: { Attributes?: { name?: string } } })
    .map((e) => ({ action: e.Action, id: e.id, ...(e.Actor?.Attributes?.name ? { name: e.Actor.Attributes.name } : {}) }));
}

/**
 * The engine's events since `since` once `enough` says they are all there, or as they are after 20 s. Podman writes
 * its events from a goroutine fed by libimage's event channel, after the API call has answered: right after a push or
 * a container start its log may not have it yet (seen in CI). Docker records them before answering: at once there.
 */
export async function recordedEvents(
  socketPath: string,
  since: number,
  enough: (events: ImageEvent[]) => boolean,
  type: 'image' | 'container' = 'image',
): Promise<ImageEvent[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const events = await imageEvents(socketPath, since, type);
    if (enough(events) || Date.now() > deadline) return events;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

export async function removeTag(socketPath: string, tag: string): Promise<void> {
  await new Docker({ socketPath })
    .getImage(tag)
    .remove({ force: true })
    .catch(() => undefined);
}
