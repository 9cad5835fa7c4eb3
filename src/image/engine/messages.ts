/**
 * What the engine's build and push streams carry, and the small encodings the engine API needs.
 */
import * as z from 'zod';
import { tryParseImageReference } from '../runtime/reference.js';

export interface RegistryAuth {
  username: string;
  password: string;
  /** Registry host (with port), e.g. `images.astronomer.cloud` or `127.0.0.1:5000`. */
  serveraddress: string;
  /**
   * A bearer token for the registry, already scoped to this push: Docker then sends it as it is instead of asking the
   * registry's token realm with username and password first (a round trip, on a new connection, per push).
   */
  registrytoken?: string;
}

/** The credentials alone: what the engine gets where a registry token cannot be used. */
export function withoutRegistryToken(auth: RegistryAuth): RegistryAuth {
  const { registrytoken: _dropped, ...credentials } = auth;
  return credentials;
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

/**
 * The engine decodes X-Registry-Auth with Go's padded URL-safe base64; Node's 'base64url' drops the padding, and
 * then, depending on the JSON's length, the engine silently reads no credentials at all.
 */
export function encodeRegistryAuth(auth: Partial<RegistryAuth>): string {
  return Buffer.from(JSON.stringify(auth)).toString('base64').replaceAll('+', '-').replaceAll('/', '_');
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
