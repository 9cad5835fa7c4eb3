/**
 * Registry calls of the Docker Registry HTTP API v2: the manifest digest and the labels of a pushed image, which the
 * Astro API does not return with a deploy, and a new tag for a manifest the registry already holds (a redeploy of an
 * image it has). Authenticates the way `docker pull` and `docker push` do: the registry's Bearer challenge, answered
 * by its token realm with the same credentials a push uses, for the scope the call needs. Requests go through the API
 * clients' node:http fetch (kept-alive connections; the global fetch compiles undici first).
 */
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { nodeFetch, type FetchAnswer, type FetchPort } from '../platform/http.js';
import { CHECKED_ONCE } from '../util/checked-once.js';

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

const manifestSchema = z.looseObject({
  mediaType: z.string().optional(),
  config: z.looseObject({ digest: z.string() }).optional(),
  manifests: z
    .array(z.looseObject({ digest: z.string(), platform: z.looseObject({ os: z.string().optional(), architecture: z.string().optional() }).optional() }))
    .optional(),
});
const configSchema = z.looseObject({ config: z.looseObject({ Labels: z.record(z.string(), z.string()).nullable().optional() }).optional() });
const tokenSchema = z.looseObject({ token: z.string().optional(), access_token: z.string().optional() });

export interface PushedImage {
  /** The manifest digest the registry serves for the tag (what `docker pull` would pin). */
  digest: string;
  labels: Record<string, string>;
}

/** Where a registry sends its clients for a token (its Bearer challenge's realm and service). */
export const registryChallengeSchema = z.object({ realm: z.string(), service: z.string().optional() });
export type RegistryChallenge = z.infer<typeof registryChallengeSchema>;

function challengeOf(header: string | null): RegistryChallenge | undefined {
  if (!header || !/^bearer\s/i.test(header)) return undefined;
  const out: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!.toLowerCase()] = m[2]!;
  return out.realm ? { realm: out.realm, ...(out.service !== undefined ? { service: out.service } : {}) } : undefined;
}

const LOCAL_HOST = /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;

/** `host/name` of a repository, and the origin its registry is read from (plain http for a local one only). */
function splitRepository(repository: string): { host: string; name: string; origin: string } {
  const slash = repository.indexOf('/');
  const host = repository.slice(0, slash);
  return { host, name: repository.slice(slash + 1), origin: `${LOCAL_HOST.test(host) ? 'http' : 'https'}://${host}` };
}

/** The origin (scheme, host, port) inspectPushedImage reads `repository` from. */
export function registryOrigin(repository: string): string {
  return splitRepository(repository).origin;
}

/** The registry host of a repository (`host[:port]`), the key its challenge is remembered under. */
export function registryHost(repository: string): string {
  return splitRepository(repository).host;
}

/**
 * How long the registry at `origin` took to answer a request on a new connection (`GET /v2/`, which every registry
 * answers, with 401 and its Bearer challenge when it wants a token), and that challenge; undefined when it did not
 * answer. The connection stays open for what follows (nodeFetch keeps it alive).
 */
export async function probeRegistry(
  origin: string,
  signal?: AbortSignal,
  fetch: FetchPort = nodeFetch,
): Promise<{ tookMs: number; challenge?: RegistryChallenge } | undefined> {
  const started = performance.now();
  try {
    const answer = await fetch(`${origin}/v2/`, { method: 'GET', ...(signal ? { signal } : {}) });
    await answer.text();
    const challenge = answer.status === 401 ? challengeOf(answer.headers.get('www-authenticate')) : undefined;
    return { tookMs: performance.now() - started, ...(challenge ? { challenge } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * A remembered realm is asked for a token before the registry has challenged this run, so it must be one a challenge
 * could be trusted with: https, or http on this machine only.
 */
function trustedRealm(realm: string): boolean {
  try {
    const url = new URL(realm);
    return url.protocol === 'https:' || (url.protocol === 'http:' && LOCAL_HOST.test(url.host));
  } catch {
    return false;
  }
}

/**
 * A token from the registry's token realm (Docker's token protocol) for the repository `name` (without its host) and
 * `actions` (`pull`, or `pull,push`), asked for with the credentials a push uses.
 */
export async function requestRegistryToken(input: {
  challenge: RegistryChallenge;
  name: string;
  actions: string;
  auth: { username: string; password: string };
  fetch?: FetchPort;
  signal?: AbortSignal;
}): Promise<string> {
  const fetch = input.fetch ?? nodeFetch;
  const realm = new URL(input.challenge.realm);
  if (input.challenge.service) realm.searchParams.set('service', input.challenge.service);
  realm.searchParams.set('scope', `repository:${input.name}:${input.actions}`);
  const basic = Buffer.from(`${input.auth.username}:${input.auth.password}`).toString('base64');
  const answer = await fetch(realm.href, { headers: { authorization: `Basic ${basic}` }, signal: input.signal });
  if (answer.status < 200 || answer.status >= 300) throw new Error(`the registry's token service answered ${answer.status}`);
  const parsed = tokenSchema.parse(JSON.parse(await answer.text()), CHECKED_ONCE);
  const bearer = parsed.token ?? parsed.access_token;
  if (!bearer) throw new Error("the registry's token service sent no token");
  return bearer;
}

/**
 * A token to push `repository` (with its registry host) with, from the realm its registry challenged with last time
 * (`challenge`, remembered): what the engine would otherwise ask for itself at the start of every push, on a
 * connection of its own. Undefined without a trusted remembered realm, or when the realm does not give one.
 */
export async function requestPushToken(input: {
  repository: string;
  auth: { username: string; password: string };
  challenge: RegistryChallenge | undefined;
  fetch?: FetchPort;
  signal?: AbortSignal;
}): Promise<string | undefined> {
  if (!input.challenge || !trustedRealm(input.challenge.realm)) return undefined;
  const { name } = splitRepository(input.repository);
  return requestRegistryToken({ ...input, challenge: input.challenge, name, actions: 'pull,push' }).catch(() => undefined);
}

/** What an authenticated request to one repository sends beyond the method and the path. */
interface RepositoryRequest {
  accept?: string;
  contentType?: string;
  body?: string;
}

/**
 * Requests to one repository (`host/name`) the way `docker pull` and `docker push` authenticate: the registry's
 * Bearer challenge answered by its token realm with the push's credentials, for `actions`. `bearer`: a token already
 * had for this repository and actions, sent first. `challenge`: the one this registry sent last time (remembered by
 * the caller), whose token is asked for first, saving the unauthenticated request that would only fetch the
 * challenge again. Either refused, the registry's own challenge is answered once. `onChallenge` hears a challenge
 * the registry sent this run, for the caller to remember.
 */
function repositoryClient(input: {
  repository: string;
  actions: string;
  auth: { username: string; password: string };
  bearer?: string;
  challenge?: RegistryChallenge;
  onChallenge?: (challenge: RegistryChallenge) => void;
  fetch?: FetchPort;
  signal?: AbortSignal;
}): { send: (method: string, path: string, request?: RepositoryRequest) => Promise<FetchAnswer> } {
  const fetch = input.fetch ?? nodeFetch;
  const { name, origin } = splitRepository(input.repository);
  const base = `${origin}/v2/${name}`;
  const token = (challenge: RegistryChallenge): Promise<string> =>
    requestRegistryToken({ challenge, name, actions: input.actions, auth: input.auth, fetch, signal: input.signal });

  let bearer: Promise<string | undefined> | undefined = input.bearer !== undefined ? Promise.resolve(input.bearer) : undefined;
  if (bearer === undefined && input.challenge && trustedRealm(input.challenge.realm)) bearer = token(input.challenge).catch(() => undefined);
  /** The registry challenged this run and its token was fetched: another 401 is the answer, not a new challenge. */
  let challenged = false;

  const send = async (method: string, path: string, request: RepositoryRequest = {}): Promise<FetchAnswer> => {
    const headers: Record<string, string> = {};
    if (request.accept) headers.accept = request.accept;
    if (request.contentType) headers['content-type'] = request.contentType;
    const current = await bearer;
    if (current) headers.authorization = `Bearer ${current}`;
    const url = `${base}/${path}`;
    const init = { method, headers, signal: input.signal, ...(request.body !== undefined ? { body: request.body } : {}) };
    const res = await fetch(url, init);
    const challenge = res.status === 401 && !challenged ? challengeOf(res.headers.get('www-authenticate')) : undefined;
    if (!challenge) return res;
    challenged = true;
    input.onChallenge?.(challenge);
    const fresh = await token(challenge);
    bearer = Promise.resolve(fresh);
    return fetch(url, { ...init, headers: { ...headers, authorization: `Bearer ${fresh}` } });
  };
  return { send };
}

/**
 * The digest and labels of `repository:tag` (repository with its registry host). Undefined when the registry has
 * no such image; throws on anything else, for the caller to treat as "not known". `challenge`, `onChallenge`: as
 * repositoryClient takes them (a pull scope).
 */
export async function inspectPushedImage(input: {
  repository: string;
  tag: string;
  auth: { username: string; password: string };
  signal?: AbortSignal;
  fetch?: FetchPort;
  challenge?: RegistryChallenge;
  onChallenge?: (challenge: RegistryChallenge) => void;
}): Promise<PushedImage | undefined> {
  const ok = (res: FetchAnswer) => res.status >= 200 && res.status < 300;
  const json = async (res: FetchAnswer): Promise<unknown> => JSON.parse(await res.text());
  const { send } = repositoryClient({ ...input, actions: 'pull' });

  const top = await send('GET', `manifests/${encodeURIComponent(input.tag)}`, { accept: MANIFEST_TYPES });
  if (top.status === 404) return undefined;
  if (!ok(top)) throw new Error(`the registry answered ${top.status} for ${input.repository}:${input.tag}`);
  const digest = top.headers.get('docker-content-digest');
  if (!digest) throw new Error('the registry sent no Docker-Content-Digest');
  let manifest = manifestSchema.parse(await json(top), CHECKED_ONCE);
  if (manifest.manifests) {
    const amd64 = manifest.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? manifest.manifests[0];
    if (!amd64) return { digest, labels: {} };
    const inner = await send('GET', `manifests/${amd64.digest}`, { accept: MANIFEST_TYPES });
    if (!ok(inner)) throw new Error(`the registry answered ${inner.status} for ${amd64.digest}`);
    manifest = manifestSchema.parse(await json(inner), CHECKED_ONCE);
  }
  if (!manifest.config) return { digest, labels: {} };
  const blob = await send('GET', `blobs/${manifest.config.digest}`);
  if (!ok(blob)) throw new Error(`the registry answered ${blob.status} for the image config`);
  const config = configSchema.parse(await json(blob), CHECKED_ONCE);
  return { digest, labels: config.config?.Labels ?? {} };
}

/** A manifest as the registry stores it: the exact text its digest is of, and the media type it is served as. */
export interface StoredManifest {
  mediaType: string;
  body: string;
}

/** A content digest as registries and engines write it (a manifest's, an image id). */
export const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;

function sha256Of(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

/**
 * Gives `repository:tag` the manifest `digest` names there, without pushing anything else: the registry already
 * holds the image (the same image, pushed to this repository by an earlier deploy), so only its manifest is put
 * under the new tag. The registry checks that every layer and the config it names are in the repository; a manifest
 * it no longer has or will not take leaves the push to the engine (undefined). `imageId` is the local image's id:
 * the manifest must be of that image (its config's digest, or the manifest itself for an engine that names images by
 * their manifest), else undefined. `known`: the manifest's text remembered from an earlier tag, used only when its
 * digest matches (else it is read from the registry). `bearer`: a pull,push token for the repository, if one is had.
 */
export async function tagPushedManifest(input: {
  repository: string;
  tag: string;
  digest: string;
  imageId: string;
  known?: StoredManifest;
  auth: { username: string; password: string };
  bearer?: string;
  fetch?: FetchPort;
  signal?: AbortSignal;
}): Promise<{ digest: string; manifest: StoredManifest } | undefined> {
  if (!SHA256_DIGEST.test(input.digest)) return undefined;
  const { send } = repositoryClient({ ...input, actions: 'pull,push' });
  let manifest = input.known && sha256Of(input.known.body) === input.digest ? input.known : undefined;
  let parsed = manifest && manifestSchema.parse(JSON.parse(manifest.body), CHECKED_ONCE);
  if (!manifest || !parsed) {
    const read = await send('GET', `manifests/${input.digest}`, { accept: MANIFEST_TYPES });
    const body = await read.text();
    if (read.status !== 200 || sha256Of(body) !== input.digest) return undefined;
    parsed = manifestSchema.parse(JSON.parse(body), CHECKED_ONCE);
    const type = parsed.mediaType ?? read.headers.get('content-type')?.split(';')[0]?.trim();
    if (!type) return undefined;
    manifest = { mediaType: type, body };
  }
  if (parsed.config?.digest !== input.imageId && input.digest !== input.imageId) return undefined;
  const put = await send('PUT', `manifests/${encodeURIComponent(input.tag)}`, { contentType: manifest.mediaType, body: manifest.body });
  await put.text();
  if (put.status !== 201 && put.status !== 200) return undefined;
  const stored = put.headers.get('docker-content-digest');
  // The registry names what it stored; another digest would be another manifest under the tag (not expected).
  if (stored !== null && stored !== input.digest) throw new Error(`the registry stored ${stored} for the manifest ${input.digest}`);
  return { digest: input.digest, manifest };
}
