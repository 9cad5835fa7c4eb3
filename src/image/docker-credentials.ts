/**
 * The user's own registry credentials, as Docker keeps them: `<DOCKER_CONFIG>/config.json` with `auths` entries,
 * a default credential store (`credsStore`) and per-registry helpers (`credHelpers`), each helper being a
 * `docker-credential-<name>` program that answers `get` with the secret for a server address.
 *
 * Used for custom (bring-your-own) registries on Astronomer Software, where the push goes out with whatever
 * `docker login <host>` stored, never with the Astronomer token.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { UserError } from '../errors.js';
import { CHECKED_ONCE } from '../util/checked-once.js';

export interface DockerCredentials {
  username: string;
  password: string;
  /** An OAuth identity token (helpers answer `<token>` as the user name); sent instead of the password. */
  identityToken?: string;
  /** Where they came from, for messages: `config.json` or `docker-credential-<name>`. */
  source: string;
}

/** What a `docker-credential-<name> get` call answered; `undefined` when the helper knows nothing for that server. */
export type HelperAnswer = { username: string; secret: string } | undefined;

/** Runs `docker-credential-<helper> get` with `serverAddress` on stdin. */
export type CredentialHelperRunner = (helper: string, serverAddress: string, signal?: AbortSignal) => Promise<HelperAnswer>;

export interface ReadDockerCredentialsOptions {
  /** The folder holding `config.json` (DOCKER_CONFIG, else `~/.docker`). */
  configDir: string;
  /** Registry host with port, e.g. `registry.example.com` or `127.0.0.1:5000` (a full image name works too). */
  host: string;
  runHelper?: CredentialHelperRunner;
  signal?: AbortSignal;
}

const authEntry = z.looseObject({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
});

const dockerConfigSchema = z.looseObject({
  auths: z.record(z.string(), authEntry.nullable()).optional(),
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
});
type DockerConfig = z.infer<typeof dockerConfigSchema>;

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** `https://host:5000/v1/` or `host:5000/repo/name:tag` → `host:5000`, as Docker compares config keys. */
export function registryHostname(address: string): string {
  const withoutScheme = address.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  return withoutScheme.split('/')[0]!.toLowerCase();
}

/** Reads the credentials Docker would use for `host`; undefined when the user never logged in to it. */
export async function readDockerCredentials(options: ReadDockerCredentialsOptions): Promise<DockerCredentials | undefined> {
  const file = path.join(options.configDir, 'config.json');
  const config = await loadDockerConfig(file);
  if (!config) return undefined;
  const host = registryHostname(options.host);
  const isHub = DOCKER_HUB_HOSTS.has(host);
  const serverAddress = isHub ? DOCKER_HUB_KEY : host;
  const runHelper = options.runHelper ?? runCredentialHelper({});

  const helper = findByHost(config.credHelpers ?? {}, host) ?? (config.credsStore || undefined);
  if (helper) {
    const answer = await runHelper(helper, serverAddress, options.signal);
    if (answer) return fromHelper(answer, helper);
  }

  const entry = findByHost(config.auths ?? {}, host) ?? (isHub ? config.auths?.[DOCKER_HUB_KEY] : undefined);
  if (!entry) return undefined;
  const decoded = decodeAuthEntry(entry, file);
  return decoded && { ...decoded, source: file };
}

async function loadDockerConfig(file: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`Cannot read the Docker config ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UserError(`The Docker config ${file} is not valid JSON: ${(error as Error).message}`, {
      nextStep: 'Fix the file, or move it away and run docker login again.',
    });
  }
  const parsed = dockerConfigSchema.safeParse(json, CHECKED_ONCE);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(`The Docker config ${file} has an unexpected shape (${issue?.path.join('.') || 'top level'}: ${issue?.message}).`);
  }
  return parsed.data;
}

/** Config keys may be written with a scheme or a path (`https://host/v1/`): compare by host name, exact key first. */
function findByHost<T>(record: Record<string, T | null>, host: string): T | undefined {
  const exact = record[host];
  if (exact) return exact;
  for (const [key, value] of Object.entries(record)) {
    if (value && registryHostname(key) === host) return value;
  }
  return undefined;
}

function decodeAuthEntry(entry: z.infer<typeof authEntry>, file: string): Omit<DockerCredentials, 'source'> | undefined {
  let username = entry.username ?? '';
  let password = entry.password ?? '';
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new UserError(`The Docker config ${file} has an "auth" value that is not base64 of user:password.`);
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (entry.identitytoken) return { username, password, identityToken: entry.identitytoken };
  if (username === '' && password === '') return undefined;
  return { username, password };
}

function fromHelper(answer: { username: string; secret: string }, helper: string): DockerCredentials {
  const source = `docker-credential-${helper}`;
  if (answer.username === '<token>') return { username: '', password: '', identityToken: answer.secret, source };
  return { username: answer.username, password: answer.secret, source };
}

const helperAnswer = z.looseObject({ Username: z.string().default(''), Secret: z.string().default('') });

/** The real helper protocol: server address on stdin, JSON `{ServerURL, Username, Secret}` on stdout. */
export function runCredentialHelper(env: Readonly<Record<string, string | undefined>>, timeoutMs = 30_000): CredentialHelperRunner {
  return (helper, serverAddress, signal) =>
    new Promise<HelperAnswer>((resolve, reject) => {
      if (!/^[A-Za-z0-9._-]+$/.test(helper)) {
        reject(new UserError(`The Docker config names the credential helper "${helper}", which is not a valid helper name.`));
        return;
      }
      const program = `docker-credential-${helper}`;
      const child = execFile(program, ['get'], { env, timeout: timeoutMs, signal, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) {
          const output = `${stdout}${stderr}`.trim();
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
            reject(
              new UserError(`The Docker config uses the credential helper ${program}, but it is not installed (not found on PATH).`, {
                nextStep: `Install ${program}, or remove "${helper}" from credsStore/credHelpers in your Docker config and run docker login again.`,
              }),
            );
            return;
          }
          // Helpers report an unknown server with this text and exit 1: that is "not logged in", not a failure.
          if (/credentials not found/i.test(output)) {
            resolve(undefined);
            return;
          }
          reject(new UserError(`${program} get failed: ${output.slice(0, 300) || error.message}`, { cause: error }));
          return;
        }
        let json: unknown;
        try {
          json = JSON.parse(stdout);
        } catch {
          reject(new UserError(`${program} get answered something that is not JSON.`));
          return;
        }
        const parsed = helperAnswer.safeParse(json, CHECKED_ONCE);
        if (!parsed.success) {
          reject(new UserError(`${program} get answered JSON without Username/Secret.`));
          return;
        }
        const { Username, Secret } = parsed.data;
        resolve(Username === '' && Secret === '' ? undefined : { username: Username, secret: Secret });
      });
      // A helper may exit without reading stdin (broken, or it has nothing to ask): the write then fails with
      // EPIPE after the exit. Its exit status and output, reported by the callback above, say what went wrong; an
      // unhandled 'error' here would instead crash the whole CLI.
      child.stdin?.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EPIPE' || error.code === 'ECONNRESET') return;
        reject(new UserError(`Could not send the server address to ${program}: ${error.message}`, { cause: error }));
      });
      child.stdin?.end(serverAddress);
    });
}
