/**
 * The one place that reads environment variables. Everything else receives an AstroEnv.
 */
import os from 'node:os';
import path from 'node:path';

export interface AstroEnv {
  /** Parent directory of the global `.astro/` folder (ASTRO_HOME, else the user's home). */
  astroHome: string;
  /** ASTRO_DOMAIN: overrides the current context's domain. */
  domain?: string;
  /** ASTRO_API_TOKEN: an Astro API token for CI; never printed. */
  apiToken?: string;
  /** ASTRONOMER_KEY_ID / ASTRONOMER_KEY_SECRET: deprecated API keys (client credentials). */
  apiKeyId?: string;
  apiKeySecret?: string;
  /** ASTRONOMER_SKIP_PARSE truthy (true/1/yes/y/on). */
  skipParse: boolean;
  /** NO_COLOR set to anything non-empty, CLICOLOR=0 (unless CLICOLOR_FORCE forces colour) or CLICOLOR_FORCE=0. */
  noColor: boolean;
  /** CLICOLOR_FORCE set and not 0 forces colour even without a terminal. */
  forceColor: boolean;
  /**
   * BUILD_SECRET_INPUT, as Astronomer's CLI reads it: build secrets one per line, each in the form of a
   * `--build-secret` value (`id=NAME,src=PATH` or `id=NAME,env=VAR`); lines are trimmed and blank ones dropped.
   * Used only when no `--build-secret` flag is given. Empty when unset.
   */
  buildSecretInput: string[];
  /** CI is set (any CI provider). */
  ci: boolean;
  /** Client identification headers sent to the Astro API. */
  clientIdentifier: 'cli' | 'github-action' | 'deploy-action';
  deployActionVersion?: string;
  /** Where astro keeps caches (parse cache, updates feed). */
  cacheDir: string;
  /** ASTRO_UPDATES_URL: the Runtime updates feed. */
  updatesUrl?: string;
  /** ASTRO_PARSE_PYTHON: a Python with Airflow for host-side parse and pytest (like the `parse.python` setting). */
  parsePython?: string;
  /**
   * ASTRO_PARSE_STANDBY: 1 starts the next `dev parse`'s harness ahead even without a terminal, 0 never; unset, a
   * `dev parse` at a terminal outside CI does (src/parse/standby.ts).
   */
  parseStandby?: string;
  /** DOCKER_CONFIG, else `~/.docker`: where `config.json` names the user's registry credentials and helpers. */
  dockerConfigDir: string;
  /**
   * DOCKER_BUILDKIT, as the Docker CLI reads it: false (0, false, no, off) builds with the engine's classic builder,
   * true with BuildKit; unset, BuildKit wherever the engine has it (image/engine.ts chooseBuilder).
   */
  dockerBuilder?: 'buildkit' | 'classic';
  /**
   * ASTRO_PUSH_RELAY: false (0, false, no, off) never pushes an image through astro's relay to a distant registry
   * (image/registry-relay.ts); anything else leaves the choice to astro.
   */
  pushRelay: boolean;
  /**
   * The raw environment, for the few consumers that pass an allowlist of it on (parse sandbox, git) and for engine
   * resolution (DOCKER_HOST, DOCKER_CONTEXT, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH: src/image/connect.ts).
   */
  raw: Readonly<Record<string, string | undefined>>;
}

const TRUTHY = new Set(['true', '1', 'yes', 'y', 'on']);
const FALSY = new Set(['false', '0', 'no', 'n', 'off']);

function dockerBuilder(value: string | undefined): Pick<AstroEnv, 'dockerBuilder'> {
  const word = value?.trim().toLowerCase() ?? '';
  if (TRUTHY.has(word)) return { dockerBuilder: 'buildkit' };
  if (FALSY.has(word)) return { dockerBuilder: 'classic' };
  return {};
}

export function isTruthy(value: string | undefined): boolean {
  return value !== undefined && TRUTHY.has(value.trim().toLowerCase());
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** The clicolors convention (CLICOLOR, CLICOLOR_FORCE) as Astronomer's CLI applies it, plus NO_COLOR. */
function colour(env: NodeJS.ProcessEnv): { noColor: boolean; forceColor: boolean } {
  const force = env.CLICOLOR_FORCE;
  const forceColor = nonEmpty(force) !== undefined && force?.trim() !== '0';
  const noColor = (env.NO_COLOR !== undefined && env.NO_COLOR !== '') || force?.trim() === '0' || (!forceColor && env.CLICOLOR?.trim() === '0');
  return { noColor, forceColor };
}

function splitLines(value: string | undefined): string[] {
  return (value ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): AstroEnv {
  const home = nonEmpty(env.ASTRO_HOME) ?? nonEmpty(env.HOME) ?? os.homedir();
  const githubActions = isTruthy(env.GITHUB_ACTIONS);
  const deployAction = githubActions && isTruthy(env.DEPLOY_ACTION);
  const xdgCache = nonEmpty(env.XDG_CACHE_HOME);
  return {
    astroHome: path.resolve(home),
    domain: nonEmpty(env.ASTRO_DOMAIN),
    apiToken: nonEmpty(env.ASTRO_API_TOKEN),
    apiKeyId: nonEmpty(env.ASTRONOMER_KEY_ID),
    apiKeySecret: nonEmpty(env.ASTRONOMER_KEY_SECRET),
    skipParse: isTruthy(env.ASTRONOMER_SKIP_PARSE),
    ...colour(env),
    buildSecretInput: splitLines(env.BUILD_SECRET_INPUT),
    ci: nonEmpty(env.CI) !== undefined && env.CI !== 'false',
    clientIdentifier: deployAction ? 'deploy-action' : githubActions ? 'github-action' : 'cli',
    deployActionVersion: deployAction ? nonEmpty(env.DEPLOY_ACTION_VERSION) : undefined,
    cacheDir: nonEmpty(env.ASTRO_CACHE_DIR) ?? path.join(xdgCache ?? path.join(os.homedir(), '.cache'), 'astro'),
    updatesUrl: nonEmpty(env.ASTRO_UPDATES_URL),
    parsePython: nonEmpty(env.ASTRO_PARSE_PYTHON),
    parseStandby: nonEmpty(env.ASTRO_PARSE_STANDBY),
    dockerConfigDir: path.resolve(nonEmpty(env.DOCKER_CONFIG) ?? path.join(nonEmpty(env.HOME) ?? os.homedir(), '.docker')),
    ...dockerBuilder(env.DOCKER_BUILDKIT),
    pushRelay: !FALSY.has(env.ASTRO_PUSH_RELAY?.trim().toLowerCase() ?? ''),
    raw: { ...env },
  };
}

/** Names of variables that carry credentials: never passed on to DAG code or subprocesses we do not trust. */
export const CREDENTIAL_ENV_VARS = ['ASTRO_API_TOKEN', 'ASTRONOMER_KEY_ID', 'ASTRONOMER_KEY_SECRET'] as const;
