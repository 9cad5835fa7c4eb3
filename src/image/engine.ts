/**
 * The Docker Engine as the image services see it: a small port (`ImageEngine`) and its implementation over the
 * engine's HTTP API on its Unix socket.
 *
 * The implementation speaks HTTP with node:http rather than through dockerode: the seven calls it needs are plain
 * requests, and loading dockerode (with ssh2 and gRPC behind it) cost 200-350 ms per run, which alone put a deploy's
 * build + push well behind `docker build` + `docker push` (bench/image.bench.ts). gRPC is loaded only for builds
 * with secrets.
 *
 * Build and push report failures as `error`/`errorDetail` messages inside an HTTP 200 progress stream, not as a
 * failed request: the streams here hand every message to the caller, which must look at each one.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { tryParseImageReference } from './runtime/reference.js';

export interface RegistryAuth {
  username: string;
  password: string;
  /** Registry host (with port), e.g. `images.astronomer.cloud` or `127.0.0.1:5000`. */
  serveraddress: string;
}

/** One JSON message of the engine's build or push progress stream. */
export const engineMessageSchema = z.looseObject({
  stream: z.string().optional(),
  status: z.string().optional(),
  id: z.string().optional(),
  progress: z.string().optional(),
  progressDetail: z.looseObject({ current: z.number().optional(), total: z.number().optional() }).optional(),
  aux: z.unknown().optional(),
  error: z.string().optional(),
  errorDetail: z.looseObject({ code: z.number().optional(), message: z.string().optional() }).optional(),
});
export type EngineMessage = z.infer<typeof engineMessageSchema>;

/** A secret made available to `RUN --mount=type=secret,id=<id>` steps; needs BuildKit. */
export interface BuildSecret {
  id: string;
  data: Buffer;
}

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
  signal?: AbortSignal;
}

export interface ImageDetails {
  id: string;
  os: string;
  architecture: string;
  variant?: string;
  labels: Record<string, string>;
  repoTags: string[];
  repoDigests: string[];
  size: number;
}

export interface EngineInfo {
  apiVersion: string;
  version: string;
  os: string;
  arch: string;
}

export interface ImageEngine {
  /** Checks that the engine answers; throws a UserError saying how to start it when it does not. */
  ping(signal?: AbortSignal): Promise<EngineInfo>;
  /** Starts a build and yields every message of its progress stream, errors included. */
  build(request: EngineBuildRequest): AsyncIterable<EngineMessage>;
  /** The local image, or undefined when the engine has no image of that name. */
  inspect(ref: string): Promise<ImageDetails | undefined>;
  /** Gives the local image `source` the additional name `target` (`repo:tag`). */
  tag(source: string, target: string): Promise<void>;
  /** Pushes `ref` (`repo:tag`) and yields every message of the push progress stream, errors included. */
  push(ref: string, auth: RegistryAuth, signal?: AbortSignal): AsyncIterable<EngineMessage>;
  /** Removes the name `ref` (untags; the image itself goes only when no other name refers to it). Missing is fine. */
  remove(ref: string): Promise<void>;
}

export interface DockerEngineOptions {
  /** The engine's Unix socket. */
  socketPath: string;
}

// Shapes of the engine answers we read (the engine sends many more fields).
const versionSchema = z.looseObject({
  ApiVersion: z.string(),
  Version: z.string(),
  Os: z.string(),
  Arch: z.string(),
});

const inspectSchema = z.looseObject({
  Id: z.string(),
  Os: z.string().default(''),
  Architecture: z.string().default(''),
  Variant: z.string().optional(),
  RepoTags: z.array(z.string()).nullish(),
  RepoDigests: z.array(z.string()).nullish(),
  Size: z.number().default(0),
  Config: z.looseObject({ Labels: z.record(z.string(), z.string()).nullish() }).nullish(),
});

interface EngineRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | Record<string, string> | undefined>;
  headers?: Record<string, string | string[]>;
  /** A request body streamed as `application/x-tar`. */
  body?: Readable;
  signal?: AbortSignal;
}

/** The engine answered with an error status; `message` is the engine's own explanation. */
export class EngineHttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'EngineHttpError';
  }
}

function queryString(query: EngineRequest['query']): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    params.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

async function readBody(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function errorFromResponse(response: IncomingMessage): Promise<EngineHttpError> {
  const text = await readBody(response).catch(() => '');
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // not JSON: keep the text
  }
  return new EngineHttpError(response.statusCode ?? 0, message || `HTTP ${response.statusCode ?? '?'}`);
}

/** Engine errors that mean "nothing is listening", as opposed to an engine that answered with an error. */
const UNREACHABLE_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK', 'ECONNRESET', 'EPIPE']);

/**
 * The engine decodes X-Registry-Auth with Go's padded URL-safe base64; Node's 'base64url' drops the padding, and
 * then, depending on the JSON's length, the engine silently reads no credentials at all.
 */
export function encodeRegistryAuth(auth: RegistryAuth): string {
  return Buffer.from(JSON.stringify(auth)).toString('base64').replaceAll('+', '-').replaceAll('/', '_');
}

export function isEngineUnreachable(error: unknown): boolean {
  return UNREACHABLE_CODES.has((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}

function engineUnreachable(socketPath: string, cause: unknown): UserError {
  const code = (cause as NodeJS.ErrnoException).code;
  const detail = code === 'EACCES' ? `permission denied on ${socketPath}` : `no Docker engine answers on ${socketPath}`;
  return new UserError(`Cannot connect to the Docker engine: ${detail}.`, {
    nextStep:
      code === 'EACCES'
        ? 'Add your user to the docker group (or run with access to the socket) and try again.'
        : 'Start Docker (or set DOCKER_HOST to the engine you use) and try again.',
    cause,
  });
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error('The operation was aborted.');
  error.name = 'AbortError';
  return error;
}

/**
 * Splits the engine's newline-delimited JSON stream into validated messages. Lines that are not JSON objects are
 * passed on as log text, so nothing the engine says is lost.
 */
export async function* readJsonMessages(stream: AsyncIterable<Buffer | string>): AsyncGenerator<EngineMessage> {
  let pending = '';
  const parse = (line: string): EngineMessage | undefined => {
    const trimmed = line.trim();
    if (trimmed === '') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      return { stream: `${line}\n` };
    }
    const parsed = engineMessageSchema.safeParse(value);
    return parsed.success ? parsed.data : { stream: `${trimmed}\n` };
  };
  for await (const chunk of stream) {
    pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const message = parse(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      if (message) yield message;
      newline = pending.indexOf('\n');
    }
  }
  const last = parse(pending);
  if (last) yield last;
}

/** `repo:tag` → the engine's separate name and tag (a `:` before the last `/` is a registry port). */
export function splitRepositoryTag(ref: string): { repository: string; tag?: string } {
  const parsed = tryParseImageReference(ref);
  if (parsed.ok && parsed.reference.digest === undefined) {
    return { repository: parsed.reference.name, tag: parsed.reference.tag };
  }
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repository: ref };
}

// ---------------------------------------------------------------------------------------------------------------
// BuildKit session: the classic builder cannot mount secrets, so builds with secrets run on the engine's BuildKit
// builder, which fetches each secret from a gRPC server that the client exposes over a hijacked `/session`
// connection (the same protocol the Docker CLI speaks). Only two tiny messages are needed, so they are encoded here
// rather than by loading .proto files.

const SECRETS_METHOD = '/moby.buildkit.secrets.v1.Secrets/GetSecret';
const HEALTH_METHOD = '/grpc.health.v1.Health/Check';

function readVarint(buffer: Buffer, offset: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  let position = offset;
  for (;;) {
    if (position >= buffer.length) throw new Error('truncated protobuf varint');
    const byte = buffer[position++] as number;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next: position };
    shift += 7;
  }
}

function writeVarint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

interface ProtoField {
  field: number;
  /** Varint value (wire type 0) or, for length-delimited fields (wire type 2), undefined. */
  varint?: number;
  bytes?: Buffer;
}

/** The top-level fields of one protobuf message, in order (fixed-width fields are skipped). */
export function readProtoFields(buffer: Buffer): ProtoField[] {
  const fields: ProtoField[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const key = readVarint(buffer, offset);
    offset = key.next;
    const field = Math.floor(key.value / 8);
    const wireType = key.value & 7;
    if (wireType === 0) {
      const value = readVarint(buffer, offset);
      offset = value.next;
      fields.push({ field, varint: value.value });
    } else if (wireType === 2) {
      const length = readVarint(buffer, offset);
      const end = length.next + length.value;
      if (end > buffer.length) throw new Error('truncated protobuf field');
      fields.push({ field, bytes: buffer.subarray(length.next, end) });
      offset = end;
    } else if (wireType === 1) offset += 8;
    else if (wireType === 5) offset += 4;
    else throw new Error(`unsupported protobuf wire type ${wireType}`);
  }
  return fields;
}

/** `GetSecretRequest { string ID = 1; map<string,string> annotations = 2; }` → the ID. */
export function decodeSecretRequestId(buffer: Buffer): string {
  const id = readProtoFields(buffer).find((f) => f.field === 1 && f.bytes);
  return id?.bytes?.toString('utf8') ?? '';
}

/** `GetSecretResponse { bytes data = 1; }` */
export function encodeSecretResponse(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x0a]), writeVarint(data.length), data]);
}

/** `HealthCheckResponse { ServingStatus status = 1; }` with SERVING (1). */
const HEALTH_SERVING = Buffer.from([0x08, 0x01]);

interface BuildkitSession {
  id: string;
  close(): void;
}

async function openBuildkitSession(upgrade: (path: string, headers: Record<string, string | string[]>) => Promise<Duplex>, secrets: BuildSecret[]): Promise<BuildkitSession> {
  const grpc = await import('@grpc/grpc-js');
  const id = randomUUID();
  const socket = await upgrade('/session', {
    Upgrade: 'h2c',
    'X-Docker-Expose-Session-Uuid': id,
    'X-Docker-Expose-Session-Name': 'astro',
    // BuildKit only calls the methods a session declares.
    'X-Docker-Expose-Session-Grpc-Method': [SECRETS_METHOD, HEALTH_METHOD],
  });
  const byId = new Map(secrets.map((s) => [s.id, s.data]));
  const identity = (b: Buffer) => b;
  const server = new grpc.Server();
  server.addService(
    {
      GetSecret: {
        path: SECRETS_METHOD,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: decodeSecretRequestId,
        responseSerialize: encodeSecretResponse,
        responseDeserialize: identity,
      },
    },
    {
      GetSecret: (call: { request: string }, callback: (error: { code: number; details: string } | null, value?: Buffer) => void) => {
        const data = byId.get(call.request);
        if (data === undefined) callback({ code: grpc.status.NOT_FOUND, details: `secret ${call.request} not found` });
        else callback(null, data);
      },
    } as never,
  );
  server.addService(
    {
      Check: {
        path: HEALTH_METHOD,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    { Check: (_call: unknown, callback: (error: null, value: Buffer) => void) => callback(null, HEALTH_SERVING) } as never,
  );
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  injector.injectConnection(socket);
  return {
    id,
    close() {
      server.forceShutdown();
      socket.destroy();
    },
  };
}

export interface BuildkitVertex {
  digest: string;
  name: string;
  cached: boolean;
  started: boolean;
  completed: boolean;
  error: string;
}

export interface BuildkitStatus {
  vertexes: BuildkitVertex[];
  logs: Array<{ vertex: string; text: string }>;
}

/**
 * Decodes the part of BuildKit's `moby.buildkit.v1.StatusResponse` that build output needs: vertexes
 * (1: digest, 3: name, 4: cached, 5: started, 6: completed, 7: error) and logs (1: vertex, 4: msg).
 */
export function decodeBuildkitStatus(base64: string): BuildkitStatus {
  const status: BuildkitStatus = { vertexes: [], logs: [] };
  for (const top of readProtoFields(Buffer.from(base64, 'base64'))) {
    if (!top.bytes) continue;
    if (top.field === 1) {
      const vertex: BuildkitVertex = { digest: '', name: '', cached: false, started: false, completed: false, error: '' };
      for (const f of readProtoFields(top.bytes)) {
        if (f.field === 1 && f.bytes) vertex.digest = f.bytes.toString('utf8');
        else if (f.field === 3 && f.bytes) vertex.name = f.bytes.toString('utf8');
        else if (f.field === 4) vertex.cached = f.varint === 1;
        else if (f.field === 5) vertex.started = true;
        else if (f.field === 6) vertex.completed = true;
        else if (f.field === 7 && f.bytes) vertex.error = f.bytes.toString('utf8');
      }
      status.vertexes.push(vertex);
    } else if (top.field === 3) {
      let vertex = '';
      let text = '';
      for (const f of readProtoFields(top.bytes)) {
        if (f.field === 1 && f.bytes) vertex = f.bytes.toString('utf8');
        else if (f.field === 4 && f.bytes) text = f.bytes.toString('utf8');
      }
      status.logs.push({ vertex, text });
    }
  }
  return status;
}

/**
 * BuildKit reports progress as base64 protobuf `StatusResponse` messages; this turns them into the plain log lines
 * of the classic builder (`[2/5] RUN …` step headers, command output), keeping errors as they are.
 */
function createBuildkitTranslator(): (message: EngineMessage) => EngineMessage[] {
  const started = new Set<string>();
  return (message) => {
    if (message.id === 'moby.image.id') return [{ aux: message.aux }];
    if (message.id !== 'moby.buildkit.trace' || typeof message.aux !== 'string') return [message];
    const out: EngineMessage[] = [];
    let status: BuildkitStatus;
    try {
      status = decodeBuildkitStatus(message.aux);
    } catch {
      return [];
    }
    for (const vertex of status.vertexes) {
      const key = vertex.digest || vertex.name;
      if (vertex.started && !started.has(key) && vertex.name) {
        started.add(key);
        out.push({ stream: `${vertex.name}${vertex.cached ? ' (cached)' : ''}\n` });
      }
      if (vertex.error) out.push({ stream: `ERROR: ${vertex.error}\n` });
    }
    for (const log of status.logs) {
      if (log.text) out.push({ stream: log.text });
    }
    return out;
  };
}

class DockerEngine implements ImageEngine {
  constructor(private readonly socketPath: string) {}

  /** Sends a request and resolves with the response once its status is known; error statuses reject. */
  private send(request: EngineRequest): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const headers: Record<string, string | string[]> = { ...request.headers };
      if (request.body) headers['Content-Type'] = 'application/x-tar';
      const req = http.request({
        socketPath: this.socketPath,
        method: request.method,
        path: `${request.path}${queryString(request.query)}`,
        headers,
        ...(request.signal ? { signal: request.signal } : {}),
      });
      req.once('response', (response) => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(response);
        else void errorFromResponse(response).then(reject, reject);
      });
      req.once('error', (error) => {
        if (request.signal?.aborted) reject(abortReason(request.signal));
        else reject(isEngineUnreachable(error) ? engineUnreachable(this.socketPath, error) : error);
      });
      if (request.body) {
        request.body.once('error', (error) => req.destroy(error));
        request.body.pipe(req);
      } else {
        req.end();
      }
    });
  }

  private async json(request: EngineRequest): Promise<unknown> {
    const response = await this.send(request);
    const text = await readBody(response);
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new UserError(`The Docker engine on ${this.socketPath} answered ${request.method} ${request.path} with something that is not JSON.`);
    }
  }

  /** Switches a connection to another protocol (BuildKit's session) and hands over the raw socket. */
  private upgrade(path: string, headers: Record<string, string | string[]>): Promise<Duplex> {
    return new Promise<Duplex>((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, method: 'POST', path, headers: { Connection: 'Upgrade', ...headers } });
      req.once('upgrade', (_response, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.once('response', (response) => {
        void errorFromResponse(response).then(reject, reject);
      });
      req.once('error', (error) => reject(isEngineUnreachable(error) ? engineUnreachable(this.socketPath, error) : error));
      req.end();
    });
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
      if (isEngineUnreachable(error)) throw engineUnreachable(this.socketPath, error);
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      response.destroy();
    }
  }

  async ping(signal?: AbortSignal): Promise<EngineInfo> {
    const raw = await this.json({ method: 'GET', path: '/version', signal });
    const parsed = versionSchema.safeParse(raw);
    if (!parsed.success) throw new UserError(`The Docker engine on ${this.socketPath} gave an answer astro does not understand.`, { cause: parsed.error });
    return { apiVersion: parsed.data.ApiVersion, version: parsed.data.Version, os: parsed.data.Os, arch: parsed.data.Arch };
  }

  async *build(request: EngineBuildRequest): AsyncGenerator<EngineMessage> {
    const secrets = request.secrets ?? [];
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
          session = await openBuildkitSession((path, headers) => this.upgrade(path, headers), secrets);
        } catch (error) {
          if (!(error instanceof EngineHttpError)) throw error;
          throw new UserError(`Build secrets need the engine's BuildKit builder, and this Docker engine refused a BuildKit session: ${error.message}`, {
            nextStep: 'Use a Docker engine with BuildKit (Docker 18.09 or later on Linux), or deploy without --build-secrets.',
            cause: error,
          });
        }
        query.version = '2';
        query.session = session.id;
        translate = createBuildkitTranslator();
      }
      const response = await this.send({ method: 'POST', path: '/build', query, body: request.context, signal: request.signal });
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
      raw = await this.json({ method: 'GET', path: `/images/${ref}/json` });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
    const parsed = inspectSchema.safeParse(raw);
    if (!parsed.success) throw new UserError(`The Docker engine described the image '${ref}' in a way astro does not understand.`, { cause: parsed.error });
    const d = parsed.data;
    return {
      id: d.Id,
      os: d.Os,
      architecture: d.Architecture,
      ...(d.Variant ? { variant: d.Variant } : {}),
      labels: d.Config?.Labels ?? {},
      repoTags: d.RepoTags ?? [],
      repoDigests: d.RepoDigests ?? [],
      size: d.Size,
    };
  }

  async tag(source: string, target: string): Promise<void> {
    const { repository, tag } = splitRepositoryTag(target);
    await this.json({ method: 'POST', path: `/images/${source}/tag`, query: { repo: repository, tag } });
  }

  async *push(ref: string, auth: RegistryAuth, signal?: AbortSignal): AsyncGenerator<EngineMessage> {
    const { repository, tag } = splitRepositoryTag(ref);
    let response: IncomingMessage;
    try {
      response = await this.send({
        method: 'POST',
        path: `/images/${repository}/push`,
        // Without a tag the engine would push every tag of the repository.
        query: { tag: tag ?? 'latest' },
        headers: { 'X-Registry-Auth': encodeRegistryAuth(auth) },
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
      await this.json({ method: 'DELETE', path: `/images/${ref}` });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return;
      throw error;
    }
  }
}

export function createDockerEngine(options: DockerEngineOptions): ImageEngine {
  return new DockerEngine(options.socketPath);
}
