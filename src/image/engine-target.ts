/**
 * Which container engine astro talks to, and how to reach it, decided the way the Docker CLI decides:
 * `DOCKER_HOST` (unix://, tcp:// with or without TLS, ssh://), else `DOCKER_CONTEXT`, else `currentContext` in
 * `$DOCKER_CONFIG/config.json`, else the default socket. `container.binary: podman` selects Podman's
 * Docker-compatible socket instead of Docker's default one, and a Podman socket is also used when no Docker engine
 * answers on the default socket (only when the caller gives a probe).
 *
 * Pure apart from the injected file reads and probe: the result is plain data (src/image/connect.ts turns it into the
 * one engine client's endpoint), so every message can name the engine and why it was chosen.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import * as z from 'zod';
import { UserError } from '../errors.js';
import { SshDialError } from './engine/transport.js';
import { CHECKED_ONCE } from '../util/checked-once.js';

export type EngineKind = 'docker' | 'podman';
export type EngineTransport = 'unix' | 'tcp' | 'ssh';

/** The raw environment values that steer the choice; src/env.ts reads them, nothing here reads process.env. */
export interface EngineEnvironment {
  DOCKER_HOST?: string;
  DOCKER_CONTEXT?: string;
  DOCKER_CONFIG?: string;
  DOCKER_TLS_VERIFY?: string;
  DOCKER_CERT_PATH?: string;
  HOME?: string;
  /** The login name, used for `ssh://host` without a user (as ssh itself does). */
  USER?: string;
  /** An ssh agent for `ssh://` engines (the system's ssh uses it; named in messages). */
  SSH_AUTH_SOCK?: string;
  /** Where a rootless Podman keeps its socket (`$XDG_RUNTIME_DIR/podman/podman.sock`). */
  XDG_RUNTIME_DIR?: string;
}

export interface EngineFileStat {
  isSocket(): boolean;
  isFile(): boolean;
}

/** The few file operations resolution needs; `readFile` rejects with an errno error (`code: 'ENOENT'`) when missing. */
export interface EngineFs {
  readFile(file: string): Promise<Buffer>;
  exists(file: string): Promise<boolean>;
  /** undefined when nothing is there. */
  stat(file: string): Promise<EngineFileStat | undefined>;
}

/** Says whether an engine answers (`GET /_ping`) on a Unix socket. */
export type EngineProbe = (socketPath: string) => Promise<boolean>;

export interface EngineTargetInput {
  env: EngineEnvironment;
  /** The Astronomer config value `container.binary`: '', 'docker' or 'podman'. */
  containerBinary?: string;
  fs: EngineFs;
  /** Without it, no Podman socket is tried when the default Docker socket is silent. */
  probe?: EngineProbe;
  /** The user's uid: root's Podman socket is the rootful one. */
  uid?: number;
  /** The well-known socket paths, for installs (and tests) that keep them elsewhere. */
  sockets?: { docker?: string; rootfulPodman?: string };
}

export interface EngineTls {
  /** false for a context created with `skip-tls-verify`: encrypted, but any server certificate is accepted. */
  verify: boolean;
  /** Where ca.pem, cert.pem and key.pem were read from. */
  material: string;
  /** What to look at when TLS fails, e.g. `check DOCKER_CERT_PATH (/root/.docker)`. */
  check: string;
  ca?: Buffer;
  /** The client certificate and its key, always as a pair. */
  cert?: Buffer;
  key?: Buffer;
}

export interface EngineSsh {
  user: string;
  host: string;
  port: number;
  /**
   * The default keys found in $HOME/.ssh, in OpenSSH's order. The system's ssh looks in the home directory of the
   * passwd entry, not $HOME; astro names these (and the known_hosts file below) so that both agree.
   */
  identityFiles: string[];
  agent?: string;
  /** The user's known_hosts file(s) the host key is checked against (besides the system-wide one). */
  knownHostsFiles: string[];
}

export interface EngineTarget {
  /** e.g. `tcp://127.0.0.1:2376`, `unix:///var/run/docker.sock`, `ssh://root@127.0.0.1:2222`. */
  endpoint: string;
  /** Why this engine: `DOCKER_HOST`, `DOCKER_CONTEXT=ci`, `currentContext ci in …/config.json`, `default socket`, … */
  reason: string;
  kind: EngineKind;
  transport: EngineTransport;
  tls?: EngineTls;
  ssh?: EngineSsh;
}

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
export const ROOTFUL_PODMAN_SOCKET = '/run/podman/podman.sock';
const DEFAULT_TCP_PORT = 2375;
const DEFAULT_SSH_PORT = 22;
const SYSTEM_KNOWN_HOSTS = '/etc/ssh/ssh_known_hosts';

/** Picks the engine; throws a UserError naming the setting to fix when the settings cannot work. */
export async function resolveEngineTarget(input: EngineTargetInput): Promise<EngineTarget> {
  const env = trimmed(input.env);
  const binary = (input.containerBinary ?? '').trim().toLowerCase();
  if (binary !== '' && binary !== 'docker' && binary !== 'podman') {
    throw new UserError(`container.binary is '${input.containerBinary}', but astro knows only 'docker' and 'podman'.`, {
      nextStep: 'Run `astro config set container.binary docker` (or podman).',
    });
  }
  const kind: EngineKind = binary === 'podman' ? 'podman' : 'docker';
  const configDir = dockerConfigDir(env);
  const sockets = wellKnownSockets(input);

  // As in Astronomer's CLI, a DOCKER_HOST the user set wins over the Podman default.
  if (env.DOCKER_HOST) {
    return fromHost(env.DOCKER_HOST, {
      reason: 'DOCKER_HOST',
      setting: 'DOCKER_HOST',
      kind,
      env,
      fs: input.fs,
      sockets,
      tls: envTls(env, configDir, input.fs),
    });
  }
  if (kind === 'podman') return podmanTarget(input, env, 'container.binary podman');

  // Docker contexts belong to the Docker CLI; Podman never reads them.
  const context = env.DOCKER_CONTEXT ? { name: env.DOCKER_CONTEXT, reason: `DOCKER_CONTEXT=${env.DOCKER_CONTEXT}` } : await currentContext(input.fs, configDir);
  if (context && context.name !== 'default') {
    return fromContext(context.name, context.reason, configDir, env, input.fs, sockets);
  }

  const reason = context ? `${context.reason} (the default context)` : 'default socket';
  const target = unixTarget(sockets.docker, reason, 'docker');
  if (input.probe && !(await input.probe(sockets.docker))) {
    const podman = await answeringPodmanSocket(input, env);
    if (podman) {
      return unixTarget(podman, `podman socket at ${podman} (no Docker engine answers at unix://${sockets.docker})`, 'podman');
    }
  }
  return target;
}

/** One line for --verbose: the engine, how it is reached, and why it was chosen. */
export function describeEngineTarget(target: EngineTarget): string {
  const name = target.kind === 'podman' ? 'Podman engine' : 'Docker engine';
  const how = target.tls
    ? target.tls.verify
      ? `, TLS verified with ${target.tls.material}`
      : `, TLS without verifying the engine's certificate (${target.tls.material})`
    : target.ssh
      ? `, over ssh as ${target.ssh.user}${target.ssh.identityFiles.length > 0 ? ` with ${target.ssh.identityFiles.join(', ')}` : ''}${target.ssh.agent ? ' and the ssh agent' : ''}`
      : '';
  return `${name} at ${target.endpoint}${how} (chosen by ${target.reason})`;
}

/**
 * What an engine's `/_ping` answer says it is: Podman's Docker-compatible API adds `Libpod-Api-Version` (and names
 * itself `Libpod/…` in `Server`); Docker's never does. /_ping, not /version: Docker's /version runs its runtime's
 * binaries to report their versions (5-15 ms here) and Podman's took 180 ms, where /_ping answers in under 1 ms.
 */
export function engineKindFromPing(headers: Readonly<Record<string, string | string[] | undefined>>): EngineKind {
  const server = headers.server;
  return headers['libpod-api-version'] !== undefined || /libpod|podman/i.test(Array.isArray(server) ? server.join(' ') : (server ?? '')) ? 'podman' : 'docker';
}

/** Things some engines cannot do, which astro refuses up front rather than letting the engine drop them. */
export type EngineFeature = 'build-secrets';

/**
 * Throws a UserError when the engine cannot do `feature`. Podman's compatible API has no BuildKit session
 * (`POST /session` answers 404) and builds a `version=2` request with buildah, without the secrets: they would be
 * silently missing from `RUN --mount=type=secret` steps. Pass the kind the engine reported (engineKindFromPing)
 * when it may differ from the configured one.
 */
export function assertEngineSupports(target: Pick<EngineTarget, 'kind' | 'endpoint' | 'reason'>, feature: EngineFeature): void {
  if (feature === 'build-secrets' && target.kind === 'podman') {
    throw new UserError(
      `The Podman engine at ${target.endpoint} cannot serve build secrets: they need BuildKit, which Podman's Docker-compatible API does not offer.`,
      {
        nextStep: `Deploy without --build-secrets, or build on a Docker engine (astro chose this one because of ${target.reason}).`,
      },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// DOCKER_HOST and context endpoints

interface HostContext {
  reason: string;
  /** The setting a user edits to change this endpoint, for messages. */
  setting: string;
  kind: EngineKind;
  env: EngineEnvironment;
  fs: EngineFs;
  sockets: WellKnownSockets;
  /** Reads the TLS material for a tcp:// endpoint; undefined means plain HTTP. */
  tls: (endpoint: string) => Promise<EngineTls | undefined>;
}

async function fromHost(raw: string, ctx: HostContext): Promise<EngineTarget> {
  const { scheme, rest } = splitScheme(raw);
  switch (scheme) {
    case 'unix':
      if (rest !== '' && !rest.startsWith('/')) throw badHost(raw, ctx, 'a unix:// address needs an absolute socket path');
      return unixTarget(rest === '' ? (ctx.kind === 'podman' ? ctx.sockets.rootfulPodman : ctx.sockets.docker) : rest, ctx.reason, ctx.kind);
    case 'tcp':
      return tcpTarget(raw, rest, ctx);
    case 'ssh':
      return sshTarget(raw, ctx);
    default:
      throw badHost(raw, ctx, `astro reaches engines over unix://, tcp:// and ssh://, not ${scheme}://`);
  }
}

/** `host:port` without a scheme means tcp, as in the Docker CLI. */
function splitScheme(raw: string): { scheme: string; rest: string } {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(raw);
  if (m) return { scheme: m[1]!.toLowerCase(), rest: m[2]! };
  return { scheme: 'tcp', rest: raw };
}

interface WellKnownSockets {
  docker: string;
  rootfulPodman: string;
}

function wellKnownSockets(input: EngineTargetInput): WellKnownSockets {
  return { docker: input.sockets?.docker ?? DEFAULT_DOCKER_SOCKET, rootfulPodman: input.sockets?.rootfulPodman ?? ROOTFUL_PODMAN_SOCKET };
}

function unixTarget(socketPath: string, reason: string, kind: EngineKind): EngineTarget {
  return { endpoint: `unix://${socketPath}`, reason, kind, transport: 'unix' };
}

/** The socket path of a unix:// target. */
export function socketPathOf(target: EngineTarget): string {
  return target.endpoint.slice('unix://'.length);
}

/** Host and port of a tcp:// target (IPv6 hosts without their brackets). */
export function tcpAddressOf(target: EngineTarget): { host: string; port: number } {
  const m = /^tcp:\/\/(\[[^\]]*\]|[^:]*):(\d+)$/.exec(target.endpoint)!;
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

async function tcpTarget(raw: string, rest: string, ctx: HostContext): Promise<EngineTarget> {
  const m = /^(\[[^\]]*\]|[^:/?#]*)(?::(\d*))?(\/.*)?$/.exec(rest);
  if (!m) throw badHost(raw, ctx, 'expected tcp://HOST:PORT');
  const host = (m[1] || 'localhost').replace(/^\[(.*)\]$/, '$1');
  if (m[3] !== undefined && m[3] !== '/') throw badHost(raw, ctx, 'astro does not support a path after the address');
  const port = m[2] ? Number(m[2]) : DEFAULT_TCP_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw badHost(raw, ctx, `port ${m[2]} is out of range`);
  const endpoint = `tcp://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const tls = await ctx.tls(endpoint);
  return { endpoint, reason: ctx.reason, kind: ctx.kind, transport: 'tcp', ...(tls ? { tls } : {}) };
}

async function sshTarget(raw: string, ctx: HostContext): Promise<EngineTarget> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badHost(raw, ctx, 'expected ssh://USER@HOST[:PORT]');
  }
  if (url.password) throw badHost(raw, ctx, 'a password in the address is not supported; use an ssh key or agent');
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) {
    throw badHost(raw, ctx, 'nothing may follow HOST[:PORT] in an ssh:// address');
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw badHost(raw, ctx, 'expected ssh://USER@HOST[:PORT]');
  const port = url.port ? Number(url.port) : DEFAULT_SSH_PORT;
  const user = decodeURIComponent(url.username) || ctx.env.USER;
  if (!user) throw badHost(raw, ctx, 'name the user: ssh://USER@HOST');
  const endpoint = `ssh://${user}@${host.includes(':') ? `[${host}]` : host}:${port}`;

  // Host keys, keys, the agent and ~/.ssh/config are the system ssh's business (its messages say what failed); astro
  // only points it at the files under $HOME, which ssh itself would not look at.
  const home = ctx.env.HOME;
  const knownHostsFiles = home ? [path.join(home, '.ssh', 'known_hosts')] : [];
  const identityFiles: string[] = [];
  if (home) {
    for (const name of DEFAULT_IDENTITIES) {
      const file = path.join(home, '.ssh', name);
      if (await ctx.fs.exists(file)) identityFiles.push(file);
    }
  }
  const agent = ctx.env.SSH_AUTH_SOCK;
  return {
    endpoint,
    reason: ctx.reason,
    kind: ctx.kind,
    transport: 'ssh',
    ssh: { user, host, port, knownHostsFiles, identityFiles, ...(agent ? { agent } : {}) },
  };
}

// OpenSSH's default identities, in its order.
const DEFAULT_IDENTITIES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa'];

function badHost(raw: string, ctx: HostContext, why: string): UserError {
  return new UserError(`${ctx.setting}=${raw} is not an engine address astro can use: ${why}.`, {
    nextStep: `Fix ${ctx.setting} (unix:///path/to/socket, tcp://HOST:PORT or ssh://USER@HOST[:PORT]).`,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// TLS material

function dockerConfigDir(env: EngineEnvironment): string {
  if (env.DOCKER_CONFIG) return env.DOCKER_CONFIG;
  return path.join(env.HOME ?? '/root', '.docker');
}

/**
 * DOCKER_TLS_VERIFY set to anything turns on verified TLS, as in the Docker CLI (even "0"); the files come from
 * DOCKER_CERT_PATH, else the Docker config folder. ca.pem must be there; cert.pem and key.pem only when the engine
 * asks for a client certificate, and then as a pair.
 */
function envTls(env: EngineEnvironment, configDir: string, fs: EngineFs): (endpoint: string) => Promise<EngineTls | undefined> {
  return async (endpoint) => {
    if (!env.DOCKER_TLS_VERIFY) return undefined;
    const dir = env.DOCKER_CERT_PATH ?? configDir;
    const material = env.DOCKER_CERT_PATH ? `DOCKER_CERT_PATH=${dir}` : `${dir} (DOCKER_CERT_PATH is not set)`;
    const check = env.DOCKER_CERT_PATH ? `check DOCKER_CERT_PATH (${dir})` : `check DOCKER_CERT_PATH (not set; astro looked in ${dir})`;
    return readTlsFiles(fs, dir, { endpoint, verify: true, material, check, caRequired: true });
  };
}

function contextTls(fs: EngineFs, name: string, configDir: string, skipVerify: boolean): (endpoint: string) => Promise<EngineTls | undefined> {
  return async (endpoint) => {
    const dir = path.join(configDir, 'contexts', 'tls', contextDirName(name), 'docker');
    const material = `the TLS files of Docker context ${name} (${dir})`;
    const check = `check the TLS files of Docker context ${name} (\`docker context inspect ${name}\`, ${dir})`;
    const tls = await readTlsFiles(fs, dir, { endpoint, verify: !skipVerify, material, check, caRequired: false });
    // Like the Docker CLI: a context without TLS files talks plain HTTP unless it was made with skip-tls-verify.
    if (!tls.ca && !tls.cert && !skipVerify) return undefined;
    return tls;
  };
}

// The folder name Docker gives a context: the hex SHA-256 of its name (so any name is a valid folder name).
export function contextDirName(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

interface TlsFilesRequest {
  endpoint: string;
  verify: boolean;
  material: string;
  check: string;
  caRequired: boolean;
}

async function readTlsFiles(fs: EngineFs, dir: string, request: TlsFilesRequest): Promise<EngineTls> {
  const [ca, cert, key] = await Promise.all(['ca.pem', 'cert.pem', 'key.pem'].map((f) => readOptional(fs, path.join(dir, f))));
  const fail = (why: string) => new UserError(`Cannot set up TLS to the engine at ${request.endpoint}: ${why} — ${request.check}.`);
  if (request.caRequired && !ca) throw fail(`there is no ca.pem in ${dir}`);
  if (cert && !key) throw fail(`${dir} has cert.pem but no key.pem`);
  if (key && !cert) throw fail(`${dir} has key.pem but no cert.pem`);
  return { verify: request.verify, material: request.material, check: request.check, ...(ca ? { ca } : {}), ...(cert ? { cert, key } : {}) };
}

async function readOptional(fs: EngineFs, file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new UserError(`Cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Docker contexts

const dockerConfigSchema = z.looseObject({ currentContext: z.string().optional() });

// Docker writes these keys capitalized (Go field names); Go would also accept other cases, so we compare loosely.
const contextMetaSchema = z.record(z.string(), z.unknown());

async function currentContext(fs: EngineFs, configDir: string): Promise<{ name: string; reason: string } | undefined> {
  const file = path.join(configDir, 'config.json');
  const text = await readOptional(fs, file);
  if (!text) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text.toString('utf8'));
  } catch (error) {
    throw new UserError(`The Docker config ${file} is not valid JSON: ${(error as Error).message}`, {
      nextStep: 'Fix the file, or move it away.',
    });
  }
  const parsed = dockerConfigSchema.safeParse(json, CHECKED_ONCE);
  if (!parsed.success) throw new UserError(`The Docker config ${file} has an unexpected shape: ${parsed.error.issues[0]?.message}.`);
  const name = parsed.data.currentContext?.trim();
  return name ? { name, reason: `currentContext ${name} in ${file}` } : undefined;
}

async function fromContext(
  name: string,
  reason: string,
  configDir: string,
  env: EngineEnvironment,
  fs: EngineFs,
  sockets: WellKnownSockets,
): Promise<EngineTarget> {
  const metaFile = path.join(configDir, 'contexts', 'meta', contextDirName(name), 'meta.json');
  const text = await readOptional(fs, metaFile);
  if (!text) {
    throw new UserError(`Docker context "${name}" (${reason}) does not exist: there is no ${metaFile}.`, {
      nextStep: 'List contexts with `docker context ls`; pick one with `docker context use NAME`, or unset DOCKER_CONTEXT.',
    });
  }
  let meta: Record<string, unknown>;
  try {
    meta = contextMetaSchema.parse(JSON.parse(text.toString('utf8')));
  } catch (error) {
    throw new UserError(`Docker context "${name}" is unreadable (${metaFile}): ${(error as Error).message}`, { cause: error });
  }
  const endpoints = loose(meta, 'Endpoints');
  const docker = endpoints && typeof endpoints === 'object' ? loose(endpoints as Record<string, unknown>, 'docker') : undefined;
  if (!docker || typeof docker !== 'object') {
    throw new UserError(`Docker context "${name}" has no docker endpoint (${metaFile}).`, {
      nextStep: `Recreate it with \`docker context create ${name} --docker host=…\`.`,
    });
  }
  const host = loose(docker as Record<string, unknown>, 'Host');
  const skipVerify = loose(docker as Record<string, unknown>, 'SkipTLSVerify') === true;
  if (typeof host !== 'string' || host.trim() === '') return unixTarget(sockets.docker, reason, 'docker');
  return fromHost(host.trim(), {
    reason,
    setting: `the host of Docker context ${name}`,
    kind: 'docker',
    env,
    fs,
    sockets,
    tls: contextTls(fs, name, configDir, skipVerify),
  });
}

function loose(record: Record<string, unknown>, key: string): unknown {
  if (key in record) return record[key];
  const found = Object.keys(record).find((k) => k.toLowerCase() === key.toLowerCase());
  return found === undefined ? undefined : record[found];
}

// ---------------------------------------------------------------------------------------------------------------
// Podman

function podmanSockets(input: EngineTargetInput, env: EngineEnvironment): string[] {
  const rootless = env.XDG_RUNTIME_DIR
    ? path.join(env.XDG_RUNTIME_DIR, 'podman', 'podman.sock')
    : input.uid !== undefined && input.uid !== 0
      ? `/run/user/${input.uid}/podman/podman.sock`
      : undefined;
  const rootful = wellKnownSockets(input).rootfulPodman;
  const sockets = input.uid === 0 ? [rootful, rootless] : [rootless, rootful];
  return [...new Set(sockets.filter((s): s is string => s !== undefined))];
}

async function podmanTarget(input: EngineTargetInput, env: EngineEnvironment, why: string): Promise<EngineTarget> {
  const candidates = podmanSockets(input, env);
  for (const socket of candidates) {
    if ((await input.fs.stat(socket))?.isSocket()) return unixTarget(socket, `${why}: podman socket at ${socket}`, 'podman');
  }
  return unixTarget(
    candidates[0]!,
    `${why}: podman socket at ${candidates[0]} (not found; also looked at ${candidates.slice(1).join(', ') || 'nothing else'})`,
    'podman',
  );
}

async function answeringPodmanSocket(input: EngineTargetInput, env: EngineEnvironment): Promise<string | undefined> {
  for (const socket of podmanSockets(input, env)) {
    if ((await input.fs.stat(socket))?.isSocket() && (await input.probe!(socket))) return socket;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------

function trimmed(env: EngineEnvironment): EngineEnvironment {
  const out: EngineEnvironment = {};
  for (const [k, v] of Object.entries(env) as Array<[keyof EngineEnvironment, string | undefined]>) {
    if (v !== undefined && v.trim() !== '') out[k] = v.trim();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Connection errors, in words that name the engine and what to check

/** A failure to reach or talk to the chosen engine; `endpoint` and `reason` say which one and why it was chosen. */
export class EngineUnreachableError extends UserError {
  override readonly kind = 'engine-unreachable';
  readonly endpoint: string;
  readonly reason: string;

  constructor(target: EngineTarget, detail: string, check: string, cause: unknown) {
    const name = target.kind === 'podman' ? 'Podman engine' : 'Docker engine';
    super(`No ${name} answers at ${target.endpoint}: ${detail} — ${check}.`, {
      nextStep: `astro chose this engine because of ${target.reason}.`,
      cause,
    });
    this.endpoint = target.endpoint;
    this.reason = target.reason;
  }
}

// Node's codes for a server certificate that does not chain to the CA we trust.
const UNKNOWN_AUTHORITY = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);
// TLS alerts the engine sends when it does not accept our client certificate (or got none).
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
]);

/**
 * Turns what Node's sockets and TLS, or the system's ssh, failed with while talking to `target` into one UserError that names the engine,
 * what went wrong, and what to check. Errors that are already AstroErrors are the caller's business: pass only
 * transport failures here.
 */
export function describeEngineError(target: EngineTarget, error: unknown): EngineUnreachableError {
  const [detail, check] = explain(target, error);
  return new EngineUnreachableError(target, detail, check, error);
}

function explain(target: EngineTarget, error: unknown): [string, string] {
  const e = (error ?? {}) as { code?: unknown; statusCode?: unknown; message?: unknown; cause?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const where = target.ssh ? `${target.ssh.host}:${target.ssh.port}` : target.endpoint.replace(/^[a-z]+:\/\//, '');
  const socket = target.transport === 'unix' ? target.endpoint.slice('unix://'.length) : undefined;
  const tlsCheck = target.tls?.check ?? 'check DOCKER_TLS_VERIFY and DOCKER_CERT_PATH';
  const startHint =
    target.kind === 'podman'
      ? `start it with \`podman system service --time=0 ${target.endpoint}\` (or \`systemctl --user start podman.socket\`)`
      : 'start Docker, or point DOCKER_HOST or `docker context use` at the engine you use';

  if (target.ssh && error instanceof SshDialError) {
    const ssh = target.ssh;
    // What the system's ssh said last (its own words), sorted into what to check.
    if (/host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(message)) {
      return [
        `ssh could not verify the host key of ${where} (${message})`,
        `check that its host key is in ${[...ssh.knownHostsFiles, SYSTEM_KNOWN_HOSTS].join(' or ')}: connect once with \`ssh -p ${ssh.port} ${ssh.user}@${ssh.host}\``,
      ];
    }
    if (/permission denied/i.test(message)) {
      const keys = [...ssh.identityFiles, ...(ssh.agent ? [`the agent at SSH_AUTH_SOCK=${ssh.agent}`] : [])];
      return [
        `ssh refused the login of ${ssh.user}@${where} (${message})`,
        `check the keys ssh offers (${keys.length > 0 ? keys.join(' and ') : 'none found in ~/.ssh, and no agent'}): a public key must be in ${ssh.user}'s authorized_keys on ${ssh.host}`,
      ];
    }
    if (/connection refused/i.test(message)) return ['connection refused', `check that sshd listens on ${where}`];
    if (/could not resolve hostname/i.test(message)) return [`cannot resolve the host name in ${target.endpoint}`, 'check DOCKER_HOST or the context'];
    if (/timed out/i.test(message)) return [`ssh to ${where} timed out`, 'check that sshd runs there and the address in DOCKER_HOST or the context is right'];
    return [
      `the ssh session to ${where} ended before the engine answered (${message})`,
      `check that \`docker system dial-stdio\` works for ${ssh.user} on ${ssh.host} (the docker CLI on its PATH, and access to the engine there)`,
    ];
  }

  if (target.ssh && (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(message))) {
    return [
      `the ssh session to ${where} ended before the engine answered`,
      `check that \`docker system dial-stdio\` works for ${target.ssh.user} on ${target.ssh.host} (the docker CLI on its PATH, and access to the engine there)`,
    ];
  }

  if (code && UNKNOWN_AUTHORITY.has(code)) return ['TLS handshake failed: unknown authority', tlsCheck];
  if (code === 'CERT_HAS_EXPIRED') return ["TLS handshake failed: the engine's certificate has expired", tlsCheck];
  if (code === 'CERT_NOT_YET_VALID') return ["TLS handshake failed: the engine's certificate is not valid yet", 'check the clocks, then ' + tlsCheck];
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return [`TLS handshake failed: the engine's certificate is not valid for ${where}`, `use the host name the certificate names, or ${tlsCheck}`];
  if (code && CLIENT_CERT_REFUSED.has(code))
    return [
      "TLS handshake failed: the engine refused astro's client certificate",
      `${tlsCheck}: cert.pem and key.pem must be signed by the CA the engine trusts`,
    ];
  if (code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' || code === 'ERR_OSSL_PEM_NO_START_LINE')
    return ['the TLS client certificate or key is unusable', `${tlsCheck}: cert.pem and key.pem must belong together`];
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO') {
    return ['TLS handshake failed: the endpoint does not speak TLS', `unset DOCKER_TLS_VERIFY, or check the port (${where})`];
  }
  if (target.transport === 'tcp' && !target.tls && e.statusCode === 400) {
    return ['the engine expects TLS', 'set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the folder with ca.pem, cert.pem and key.pem'];
  }

  switch (code) {
    case 'ENOENT':
      return socket ? [`${socket} does not exist`, startHint] : [`the request failed (${message})`, startHint];
    case 'EACCES':
      return [
        `permission denied on ${socket ?? where}`,
        target.kind === 'podman' ? 'run as the user who owns the Podman socket' : 'add your user to the docker group, or run with access to the socket',
      ];
    case 'ECONNREFUSED':
      if (socket) return ['connection refused (a stale socket: the engine is not running)', startHint];
      return [
        'connection refused',
        target.transport === 'ssh' ? `check that sshd listens on ${where}` : `check that the engine listens on ${where}, and DOCKER_HOST or the context`,
      ];
    case 'ENOTSOCK':
      return [`${socket ?? where} is not a socket`, 'check DOCKER_HOST'];
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return [`cannot resolve the host name in ${target.endpoint}`, 'check DOCKER_HOST or the context'];
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return [`${where} cannot be reached (${code})`, 'check the network and DOCKER_HOST or the context'];
    case 'ECONNRESET':
    case 'EPIPE':
      return [
        'the engine closed the connection',
        target.transport === 'tcp' && !target.tls ? 'if the engine expects TLS, set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH' : 'check the engine log',
      ];
    default:
      break;
  }
  if (e.cause !== undefined && e.cause !== error) return explain(target, e.cause);
  return [`the request failed (${message})`, 'check the engine and the settings that chose it'];
}
