/**
 * BuildKit's side of a build with secrets: the classic builder cannot mount secrets, so such builds run on the
 * engine's BuildKit builder, which fetches each secret from a gRPC server the client exposes over a hijacked
 * `/session` connection (the protocol the Docker CLI speaks), and reports progress as protobuf status messages.
 * Only a few tiny messages are needed, so they are encoded here rather than by loading .proto files.
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { BuildSecret, EngineMessage } from './messages.js';

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

export interface BuildkitSession {
  id: string;
  close(): void;
}

export async function openBuildkitSession(
  upgrade: (path: string, headers: Record<string, string | string[]>) => Promise<Duplex>,
  secrets: BuildSecret[],
): Promise<BuildkitSession> {
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
export function createBuildkitTranslator(): (message: EngineMessage) => EngineMessage[] {
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
