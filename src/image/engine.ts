/**
 * The one Docker client: every call astro makes to a Docker-compatible engine (build, push, inspect, tag, the
 * parse and pytest containers) goes through `ImageEngine`, implemented here over the engine's HTTP API on whatever
 * endpoint the user's Docker setup names (unix socket, TCP with or without TLS, SSH: see engine/transport.ts).
 *
 * Why not dockerode: measured on this 2-core machine, loading dockerode (docker-modem, ssh2, gRPC and protobufjs
 * behind it) costs 200-350 ms per run, which alone put a deploy's build + push behind `docker build` + `docker
 * push` (bench/image.bench.ts); the dozen calls astro needs are plain requests. gRPC is loaded only for builds with
 * secrets (engine/buildkit.ts). The decision is in the README's "How it is built".
 *
 * Build and push report failures as `error`/`errorDetail` messages inside an HTTP 200 progress stream, not as a
 * failed request: the streams here hand every message to the caller, which must look at each one.
 */
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import type { Duplex, Readable } from 'node:stream';
import * as z from 'zod';
import { UserError } from '../errors.js';
import { versionAtLeast } from '../platform/software/versions.js';
import { createBuildkitTranslator, openBuildkitSession, type BuildkitSession } from './engine/buildkit.js';
import {
  readJsonMessages,
  splitRepositoryTag,
  encodeRegistryAuth,
  withoutRegistryToken,
  type BuildSecret,
  type EngineMessage,
  type RegistryAuth,
} from './engine/messages.js';
import {
  abortReason,
  createTransport,
  endpointUrl,
  EngineHttpError,
  isEngineUnreachable,
  type EngineEndpoint,
  type EngineRequest,
  type EngineTransport,
} from './engine/transport.js';
import { assertEngineSupports, engineKindFromPing, type EngineKind } from './engine-target.js';
import { CHECKED_ONCE } from '../util/checked-once.js';

export {
  encodeRegistryAuth,
  withoutRegistryToken,
  readJsonMessages,
  splitRepositoryTag,
  engineMessageSchema,
  type BuildSecret,
  type EngineMessage,
  type RegistryAuth,
} from './engine/messages.js';
export { EngineHttpError, endpointUrl, isEngineUnreachable, type EngineEndpoint } from './engine/transport.js';

export interface EngineBuildRequest {
  /** The build context as a tar stream (see context.ts). */
  context: Readable;
  /** Name the image is tagged with, e.g. `my-namespace/airflow:latest`. */
  tag: string;
  /** Path of the Dockerfile inside the context. */
  dockerfile: string;
  platform?: string;
  labels?: Record<string, string>;
  buildArgs?: Record<string, string>;
  noCache?: boolean;
  pull?: boolean;
  /** When non-empty the build runs on the engine's BuildKit builder with a session that serves these secrets. */
  secrets?: BuildSecret[];
  /** The builder (chooseBuilder); BuildKit whenever there are secrets. */
  builder?: Builder;
  signal?: AbortSignal;
}

/** The engine's builders: BuildKit (`version=2`), or the classic one, which runs every LABEL as a container of its own. */
export type Builder = 'buildkit' | 'classic';

export interface ImageDetails {
  id: string;
  os: string;
  architecture: string;
  variant?: string;
  labels: Record<string, string>;
  /** The image's own environment (`ENV` lines), which its containers start with. */
  env: Record<string, string>;
  repoTags: string[];
  repoDigests: string[];
  size: number;
}

export interface EngineInfo {
  /** The newest API version the engine speaks (`Api-Version`). */
  apiVersion: string;
  /** How the engine names itself (`Server`, e.g. `Docker/20.10.24 (linux)`, `Libpod/4.3.1 (linux)`); may be empty. */
  server: string;
  /** What the engine says it is (Podman names itself in its /_ping answer), whatever the settings assumed. */
  kind: EngineKind;
}

export interface ImageEngine {
  /** The engine's address, as users write it (`unix:///var/run/docker.sock`, `tcp://…`, `ssh://…`). */
  readonly where: string;
  /** Checks that the engine answers; throws a UserError saying how to start it when it does not. */
  ping(signal?: AbortSignal): Promise<EngineInfo>;
  /**
   * The builder a build without secrets gets: `wanted` when given (classic on Podman, which has no BuildKit API),
   * else BuildKit on a Docker engine that has it (API 1.39 and later), else classic.
   */
  chooseBuilder(wanted?: Builder, signal?: AbortSignal): Promise<Builder>;
  /** Starts a build and yields every message of its progress stream, errors included. */
  build(request: EngineBuildRequest): AsyncIterable<EngineMessage>;
  /** The local image, or undefined when the engine has no image of that name. */
  inspect(ref: string): Promise<ImageDetails | undefined>;
  /** Gives the local image `source` the additional name `target` (`repo:tag`). */
  tag(source: string, target: string): Promise<void>;
  /** Pushes `ref` (`repo:tag`) and yields every message of the push progress stream, errors included. */
  push(ref: string, auth: RegistryAuth, signal?: AbortSignal): AsyncIterable<EngineMessage>;
  /**
   * Whether the engine's own connections start from this machine's loopback, so that a registry on 127.0.0.1 here is
   * one it can push to (image/registry-relay.ts): a Docker engine on a local socket, running on this kernel, neither
   * Docker Desktop's (a VM) nor a rootless one (a network namespace of its own). False when in doubt.
   */
  sharesLoopback(signal?: AbortSignal): Promise<boolean>;
  /** Removes the name `ref` (untags; the image itself goes only when no other name refers to it). Missing is fine. */
  remove(ref: string): Promise<void>;
  /** Creates a container (not started): the parse and pytest sandboxes. */
  createContainer(spec: ContainerSpec): Promise<EngineContainer>;
}

/** The fields of the engine's container-create body astro sends. */
export interface ContainerSpec {
  Image: string;
  Cmd: string[];
  Env: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
  HostConfig?: Record<string, unknown>;
}

export interface EngineContainer {
  id: string;
  /** The container's stdout and stderr, as the engine multiplexes them (see demuxStream). */
  attach(): Promise<Duplex>;
  start(): Promise<void>;
  /** Resolves with the exit code once the container stops. */
  wait(): Promise<{ StatusCode: number }>;
  kill(): Promise<void>;
  remove(options?: { force?: boolean }): Promise<void>;
}

// Shapes of the engine answers we read (the engine sends many more fields).
const inspectSchema = z.looseObject({
  Id: z.string(),
  Os: z.string().default(''),
  Architecture: z.string().default(''),
  Variant: z.string().optional(),
  RepoTags: z.array(z.string()).nullish(),
  RepoDigests: z.array(z.string()).nullish(),
  Size: z.number().default(0),
  Config: z.looseObject({ Labels: z.record(z.string(), z.string()).nullish(), Env: z.array(z.string()).nullish() }).nullish(),
});

/** What sharesLoopback reads of `GET /version`. */
const versionSchema = z.looseObject({
  KernelVersion: z.string().optional(),
  Platform: z.looseObject({ Name: z.string().optional() }).nullish(),
  Components: z.array(z.looseObject({ Name: z.string() })).nullish(),
});

class DockerEngine implements ImageEngine {
  readonly where: string;
  private info?: EngineInfo;
  constructor(
    private readonly t: EngineTransport,
    private readonly reason: string,
  ) {
    this.where = endpointUrl(t.endpoint);
  }

  /** Reads a progress stream to the end; aborting the signal destroys it and ends the iteration with the reason. */
  private async *follow(response: IncomingMessage, signal?: AbortSignal): AsyncGenerator<EngineMessage> {
    const onAbort = () => response.destroy(signal ? abortReason(signal) : undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) onAbort();
      yield* readJsonMessages(response);
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      if (isEngineUnreachable(error)) throw this.t.describe(error);
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      response.destroy();
    }
  }

  async ping(signal?: AbortSignal): Promise<EngineInfo> {
    let response: IncomingMessage;
    try {
      response = await this.t.send({ method: 'GET', path: '/_ping', signal });
    } catch (error) {
      // Every engine answers /_ping: an error status there (a TLS port spoken to in plain HTTP answers 400) means
      // this is not an engine astro can talk to, as much as a refused connection does.
      throw error instanceof EngineHttpError ? this.t.describe(error) : error;
    }
    response.resume();
    const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
    const apiVersion = first(response.headers['api-version']);
    // Any HTTP server answers a GET; an engine also says which API it speaks.
    if (!apiVersion) throw new UserError(`The Docker engine at ${this.where} gave an answer astro does not understand (its /_ping names no API version).`);
    this.info = { apiVersion, server: first(response.headers.server) ?? '', kind: engineKindFromPing(response.headers) };
    return this.info;
  }

  async chooseBuilder(wanted?: Builder, signal?: AbortSignal): Promise<Builder> {
    const { kind, apiVersion } = this.info ?? (await this.ping(signal));
    if (kind === 'podman') return 'classic';
    if (wanted) return wanted;
    return versionAtLeast(apiVersion, '1.39') ? 'buildkit' : 'classic';
  }

  async *build(request: EngineBuildRequest): AsyncGenerator<EngineMessage> {
    const secrets = request.secrets ?? [];
    const builder = secrets.length > 0 ? 'buildkit' : (request.builder ?? 'classic');
    if (secrets.length > 0) {
      // Podman would build without them (no BuildKit session): refused before any byte of the context is sent.
      const kind = (this.info ?? (await this.ping(request.signal))).kind;
      assertEngineSupports({ kind, endpoint: this.where, reason: this.reason }, 'build-secrets');
    }
    let session: BuildkitSession | undefined;
    let translate: ((m: EngineMessage) => EngineMessage[]) | undefined;
    const query: NonNullable<EngineRequest['query']> = {
      t: request.tag,
      dockerfile: request.dockerfile,
      rm: true,
      forcerm: true,
    };
    if (request.platform) query.platform = request.platform;
    if (request.labels && Object.keys(request.labels).length > 0) query.labels = request.labels;
    if (request.buildArgs && Object.keys(request.buildArgs).length > 0) query.buildargs = request.buildArgs;
    if (request.noCache) query.nocache = true;
    if (request.pull) query.pull = true;
    try {
      if (secrets.length > 0) {
        try {
          session = await openBuildkitSession((path, headers) => this.t.upgrade(path, headers, 'h2c'), secrets);
        } catch (error) {
          if (!(error instanceof EngineHttpError)) throw error;
          throw new UserError(`Build secrets need the engine's BuildKit builder, and this Docker engine refused a BuildKit session: ${error.message}`, {
            nextStep: 'Use a Docker engine with BuildKit (Docker 18.09 or later on Linux), or deploy without --build-secrets.',
            cause: error,
          });
        }
        query.session = session.id;
      }
      if (builder === 'buildkit') {
        // Without secrets no session is needed: the context travels as the request's body, as for the classic one.
        query.version = '2';
        translate = createBuildkitTranslator();
      }
      const response = await this.t.send({ method: 'POST', path: '/build', query, body: request.context, signal: request.signal });
      for await (const message of this.follow(response, request.signal)) {
        if (translate) yield* translate(message);
        else yield message;
      }
    } catch (error) {
      if (request.signal?.aborted) throw abortReason(request.signal);
      throw error;
    } finally {
      request.context.destroy();
      session?.close();
    }
  }

  async inspect(ref: string): Promise<ImageDetails | undefined> {
    let raw: unknown;
    try {
      raw = await this.t.json({ method: 'GET', path: `/images/${ref}/json` });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
    const parsed = inspectSchema.safeParse(raw, CHECKED_ONCE);
    if (!parsed.success) throw new UserError(`The Docker engine described the image '${ref}' in a way astro does not understand.`, { cause: parsed.error });
    const d = parsed.data;
    return {
      id: d.Id,
      os: d.Os,
      architecture: d.Architecture,
      ...(d.Variant ? { variant: d.Variant } : {}),
      labels: d.Config?.Labels ?? {},
      env: Object.fromEntries(
        (d.Config?.Env ?? []).flatMap((entry) => {
          const eq = entry.indexOf('=');
          return eq > 0 ? [[entry.slice(0, eq), entry.slice(eq + 1)]] : [];
        }),
      ),
      repoTags: d.RepoTags ?? [],
      repoDigests: d.RepoDigests ?? [],
      size: d.Size,
    };
  }

  async sharesLoopback(signal?: AbortSignal): Promise<boolean> {
    const { kind } = this.info ?? (await this.ping(signal));
    if (kind !== 'docker' || this.t.endpoint.kind !== 'unix' || process.platform !== 'linux') return false;
    const version = versionSchema.parse(await this.t.json({ method: 'GET', path: '/version', signal }), CHECKED_ONCE);
    return (
      version.KernelVersion === os.release() &&
      !/desktop/i.test(version.Platform?.Name ?? '') &&
      !(version.Components ?? []).some((component) => /rootless/i.test(component.Name))
    );
  }

  async tag(source: string, target: string): Promise<void> {
    const { repository, tag } = splitRepositoryTag(target);
    await this.t.json({ method: 'POST', path: `/images/${source}/tag`, query: { repo: repository, tag } });
  }

  async *push(ref: string, auth: RegistryAuth, signal?: AbortSignal): AsyncGenerator<EngineMessage> {
    const { repository, tag } = splitRepositoryTag(ref);
    // Docker sends a registry token as it is (its pass-through token handler), and then needs no credentials: it gets
    // the token alone. Podman's compatible API is not known to pass one on: it gets the credentials alone.
    let sent: Partial<RegistryAuth> = auth;
    if (auth.registrytoken !== undefined)
      sent = this.info?.kind === 'podman' ? withoutRegistryToken(auth) : { serveraddress: auth.serveraddress, registrytoken: auth.registrytoken };
    let response: IncomingMessage;
    try {
      response = await this.t.send({
        method: 'POST',
        path: `/images/${repository}/push`,
        // Without a tag the engine would push every tag of the repository.
        query: { tag: tag ?? 'latest' },
        headers: { 'X-Registry-Auth': encodeRegistryAuth(sent) },
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      throw error;
    }
    yield* this.follow(response, signal);
  }

  async remove(ref: string): Promise<void> {
    try {
      await this.t.json({ method: 'DELETE', path: `/images/${ref}` });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return;
      throw error;
    }
  }

  async createContainer(spec: ContainerSpec): Promise<EngineContainer> {
    const created = z.looseObject({ Id: z.string() }).parse(await this.t.json({ method: 'POST', path: '/containers/create', json: spec }));
    const id = created.Id;
    const path = `/containers/${id}`;
    return {
      id,
      attach: () => this.t.upgrade(`${path}/attach?stream=1&stdout=1&stderr=1`, {}, 'tcp'),
      start: async () => {
        await this.t.json({ method: 'POST', path: `${path}/start` });
      },
      wait: async () => z.looseObject({ StatusCode: z.number() }).parse(await this.t.json({ method: 'POST', path: `${path}/wait` })),
      kill: async () => {
        await this.t.json({ method: 'POST', path: `${path}/kill` });
      },
      remove: async (options) => {
        await this.t.json({ method: 'DELETE', path, query: { force: options?.force ?? false } });
      },
    };
  }
}

export interface EngineOptions {
  /** Why this engine was chosen, for messages (see connect.ts). */
  reason?: string;
  /** Explains a failure to reach the engine; see TransportOptions. */
  describeFailure?: (cause: unknown) => Error;
}

/** An engine at `endpoint` (a unix socket path is enough for the default). */
export function createDockerEngine(endpoint: EngineEndpoint | { socketPath: string }, options: EngineOptions = {}): ImageEngine {
  const resolved: EngineEndpoint = 'kind' in endpoint ? endpoint : { kind: 'unix', socketPath: endpoint.socketPath };
  const transport = createTransport(resolved, options.describeFailure ? { describeFailure: options.describeFailure } : {});
  return new DockerEngine(transport, options.reason ?? 'the address astro was given');
}

/**
 * Splits the engine's multiplexed container stream (8-byte frame headers: stream 1 stdout, 2 stderr) into text for
 * each side. Frames may arrive split across chunks.
 */
export function demuxStream(stream: Readable | Duplex, onStdout: (text: string) => void, onStderr: (text: string) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  const decoders = { 1: new TextDecoder(), 2: new TextDecoder() };
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const kind = pending[0] === 2 ? 2 : 1;
      const text = decoders[kind].decode(pending.subarray(8, 8 + size), { stream: true });
      pending = pending.subarray(8 + size);
      if (kind === 2) onStderr(text);
      else onStdout(text);
    }
  });
}
