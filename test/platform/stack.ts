/**
 * Starts the whole local platform in this process: the REST + auth listener, Houston (+ DAG server), the blob proxy,
 * and the real registry and Azurite behind them. Tests call `startStack({ stateDir, ports: 0 })`; the CLI
 * (`tsx test/platform/cli.ts start`) runs the same thing detached on the demo ports.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobStore, dagBundleBlobName, devAccountKey, devAccountName } from './blob.js';
import { ensureSigningKeys, ensureTlsIdentity } from './keys.js';
import { Platform, registryService, type PlatformOptions } from './platform.js';
import { startAzurite, startRegistry, type ManagedProcess } from './processes.js';
import { defaultSeedPath, loadSeed, parseSeed, type Seed } from './seed.js';
import { registerAuthRoutes } from './server/auth.js';
import { createBlobProxy } from './server/blob-proxy.js';
import { closeServer, createListener, dualProtocol, listen, RequestLog, Router, type ErrorFormatter } from './server/http.js';
import { registerHoustonRoutes } from './server/houston.js';
import { registerInspectionRoutes } from './server/inspection.js';
import { registerRegistryRoutes } from './server/registry-token.js';
import { registerRestRoutes } from './server/rest.js';
import { registerViewRoutes } from './server/view.js';
import { StateStore, writeJsonAtomic } from './state.js';
import { permissionsFor, tokenIssuer, TokenService } from './tokens.js';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');
export const defaultStateDir = join(repoRoot, '.state', 'platform');
/** `view` is where both CLIs send a `localhost` user after a deploy (`localhost:5000/<workspace>/deployments/<id>`). */
export const demoPorts = { platform: 8888, registry: 5555, houston: 8871, blobProxy: 10001, view: 5000 } as const;

export interface StackPorts {
  platform: number;
  registry: number;
  houston: number;
  blobProxy: number;
  /** The Deployment View (stand-in Astro UI pages). */
  view: number;
}

export interface StackOptions {
  /**
   * Where state, keys, registry data, Azurite data, logs, endpoints.json and tokens.json live. Default
   * `.state/platform`; with `ports: 0` and no stateDir, a fresh temp dir that `stop()` removes.
   */
  stateDir?: string;
  /** `0` = every port ephemeral (tests); otherwise per-listener ports, missing ones take the demo defaults. */
  ports?: 0 | Partial<StackPorts>;
  /** A seed object, or a path to a seed JSON file. Default `test/platform/seed.json`. */
  seed?: Seed | string;
  /** Host name in URLs given to clients. Default `localhost` (what Astronomer's CLI uses for domain `localhost`). */
  publicHost?: string;
  /**
   * `host:port` handed out as the registry host (imageRepository), instead of `<publicHost>:<registry port>`: e.g. a
   * fault-injecting proxy in front of the registry. The platform itself still talks to the registry directly.
   */
  registryPublicHost?: string;
  /** Base URL put in dagsUploadUrl SAS URLs instead of the blob proxy's, e.g. a fault-injecting proxy in front of it. */
  blobPublicUrl?: string;
  /** DEPLOYING → HEALTHY/UNHEALTHY delay after finalize. Default 3000 ms. */
  healthDelayMs?: number;
  /** Lifetime of dagsUploadUrl SAS URLs. Default 900 s. */
  sasTtlSeconds?: number;
  /** Lifetime of user / API-key access tokens. Default 3600 s. */
  accessTokenTtlSeconds?: number;
  /** Lifetime of authorization codes. Default 60 s. */
  authCodeTtlSeconds?: number;
  /** Houston `appConfig.version`. Default "1.0.0". */
  platformVersion?: string;
  /** File served at /updates/astronomer-runtime. Default test/platform/fixtures/updates-feed.json. */
  updatesFeedPath?: string;
  registryBin?: string;
  azuriteBin?: string;
  opensslBin?: string;
  /** Where internal failures of handlers are reported (they also become 500 answers). Default: stderr. */
  onBug?: (error: unknown) => void;
}

export interface Endpoints {
  /** Process that runs the platform servers (the detached runner for `cli.ts start`). */
  pid: number;
  startedAt: string;
  stateDir: string;
  platform: {
    url: string;
    port: number;
    restUrl: string;
    restUrlV1alpha1: string;
    authConfigUrl: string;
    authDomainUrl: string;
    updatesFeedUrl: string;
    inspectionUrl: string;
  };
  houston: { url: string; graphqlUrl: string; port: number; dagServerUrlPattern: string; version: string };
  /** Deployment View: `<url>/<workspaceId>/deployments/<deploymentId>`. */
  /** Answers plain HTTP and TLS (self-signed `tlsCertPath`) on one port: Astronomer's CLI links to both. */
  view: { url: string; httpsUrl: string; port: number; deploymentUrlPattern: string; tlsCertPath: string };
  registry: { host: string; url: string; port: number; pid: number; service: string; issuer: string; realm: string; logPath: string; dataDir: string };
  blob: {
    proxyUrl: string;
    proxyPort: number;
    azuriteUrl: string;
    azuritePort: number;
    azuritePid: number;
    accountName: string;
    accountKey: string;
    dagBundleBlobName: string;
    logPath: string;
  };
  signingCertPath: string;
  tokensFile: string;
  stateFile: string;
  seedFile: string | null;
}

export interface SeedTokens {
  generatedAt: string;
  /** API tokens for ASTRO_API_TOKEN (JWTs). `expired: true` ones were minted already expired. */
  apiTokens: {
    id: string;
    name: string;
    token: string;
    scope: 'ORGANIZATION' | 'WORKSPACE' | 'DEPLOYMENT';
    organizationId: string;
    workspaceId?: string;
    deploymentId?: string;
    permissions: string[];
    expiresAt: string;
    expired: boolean;
  }[];
  /** Deprecated API keys (ASTRONOMER_KEY_ID / ASTRONOMER_KEY_SECRET → client_credentials). */
  apiKeys: { clientId: string; clientSecret: string; organizationId: string; workspaceId?: string; deploymentId?: string }[];
  /** Ready-made user access tokens (what a browser login yields), per seed user. */
  userAccessTokens: { userId: string; email: string; token: string; expiresAt: string }[];
  refreshTokens: { token: string; userId: string; email: string; revoked: boolean }[];
  users: { id: string; email: string; name: string; password: string; organizationIds: string[]; softwareWorkspaceIds: string[] }[];
  houston: {
    /** Houston tokens for seed users, as `createToken` would return them. */
    userTokens: { userId: string; email: string; token: string }[];
    serviceAccounts: { id: string; label: string; apiKey: string; workspaceId: string }[];
  };
}

export interface Stack {
  endpoints: Endpoints;
  tokens: SeedTokens;
  stateDir: string;
  /** The in-process model, for tests that need to look closer than the HTTP API. */
  platform: Platform;
  requests: RequestLog;
  stop(): Promise<void>;
}

function resolvePorts(ports: StackOptions['ports']): StackPorts {
  if (ports === 0) return { platform: 0, registry: 0, houston: 0, blobProxy: 0, view: 0 };
  return { ...demoPorts, ...ports };
}

const restErrors: ErrorFormatter = (error, ctx) => {
  const path = ctx.url.pathname;
  if (path.startsWith('/auth/') || path === '/auth') {
    const code =
      error.extra.code ??
      ({ 400: 'invalid_request', 401: 'invalid_client', 403: 'access_denied', 404: 'not_found', 405: 'invalid_request' } as Record<number, string>)[
        error.status
      ] ??
      'server_error';
    return { body: { error: code, error_description: error.message } };
  }
  if (path.startsWith('/registry/')) {
    return { body: { errors: [{ code: error.extra.code ?? (error.status === 401 ? 'UNAUTHORIZED' : 'DENIED'), message: error.message }] } };
  }
  return {
    body: {
      message: error.message,
      requestId: ctx.log.requestId,
      statusCode: error.status,
      ...(error.extra.fieldErrors ? { fieldErrors: error.extra.fieldErrors } : {}),
    },
  };
};

const houstonErrors: ErrorFormatter = (error, ctx) => {
  if (ctx.url.pathname === '/v1') {
    return { body: { errors: [{ message: error.message, extensions: { code: error.status === 400 ? 'BAD_REQUEST' : `HTTP_${error.status}` } }] } };
  }
  return { body: { message: error.message, statusCode: error.status } };
};

const stateDirsInUse = new Set<string>();

/** Two stacks on one state dir would corrupt each other's registry storage and state file. */
function claimStateDir(stateDir: string): void {
  if (stateDirsInUse.has(stateDir)) throw new Error(`state dir ${stateDir} is already used by a running stack in this process`);
  const endpointsFile = join(stateDir, 'endpoints.json');
  if (existsSync(endpointsFile)) {
    try {
      const { pid } = JSON.parse(readFileSync(endpointsFile, 'utf8')) as { pid?: number };
      if (pid && pid !== process.pid) {
        process.kill(pid, 0);
        throw new Error(`state dir ${stateDir} is used by a running platform (pid ${pid}); stop it first (tsx test/platform/cli.ts stop --state ${stateDir})`);
      }
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('state dir')) throw error;
      // stale endpoints.json: its process is gone
    }
  }
  stateDirsInUse.add(stateDir);
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const temporary = options.stateDir === undefined && options.ports === 0;
  const stateDir = temporary ? mkdtempSync(join(tmpdir(), 'astro-platform-')) : resolve(options.stateDir ?? defaultStateDir);
  mkdirSync(stateDir, { recursive: true });
  claimStateDir(stateDir);
  const ports = resolvePorts(options.ports);
  const publicHost = options.publicHost ?? 'localhost';
  const seedFile = typeof options.seed === 'string' ? resolve(options.seed) : options.seed ? null : defaultSeedPath;
  const seed = typeof options.seed === 'object' ? parseSeed(options.seed) : loadSeed(seedFile ?? defaultSeedPath);
  const onBug = options.onBug ?? ((error: unknown) => console.error('[local platform] internal error:', error));

  const keys = await ensureSigningKeys(join(stateDir, 'keys'), options.opensslBin);
  const seedOptions: PlatformOptions = {
    publicHost,
    healthDelayMs: options.healthDelayMs ?? 3_000,
    sasTtlSeconds: options.sasTtlSeconds ?? 900,
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 3600,
    authCodeTtlSeconds: options.authCodeTtlSeconds ?? 60,
    houstonTokenTtlSeconds: 24 * 3600,
    registryTokenTtlSeconds: 300,
    platformVersion: options.platformVersion ?? seed.software.version,
    updatesFeedPath: options.updatesFeedPath ?? join(here, 'fixtures', 'updates-feed.json'),
  };
  const state = new StateStore(join(stateDir, 'state.json'));
  const tokens = new TokenService(keys, seed.oauth.audience);
  const platform = new Platform(seed, state, tokens, keys, seedOptions);
  const requests = new RequestLog();
  const notificationSecret = randomBytes(24).toString('base64url');

  const servers: Server[] = [];
  const closers: (() => Promise<void>)[] = [];
  const processes: ManagedProcess[] = [];
  const stopAll = async () => {
    await Promise.all([...servers.map((s) => closeServer(s)), ...closers.map((close) => close())]);
    await Promise.all(processes.map((p) => p.stop()));
    stateDirsInUse.delete(stateDir);
    if (temporary) rmSync(stateDir, { recursive: true, force: true });
  };

  try {
    const platformRouter = new Router();
    registerAuthRoutes(platformRouter, platform);
    registerRestRoutes(platformRouter, platform);
    registerRegistryRoutes(platformRouter, platform, notificationSecret);
    registerInspectionRoutes(platformRouter, platform, requests);
    const platformServer = createListener({
      name: 'platform',
      router: platformRouter,
      requests,
      formatError: restErrors,
      onBug,
      skipLog: (method, path) => method === 'GET' && (path === '/_platform/requests' || path === '/_platform/state' || path === '/_platform/health'),
    });
    servers.push(platformServer);
    const platformPort = await listen(platformServer, ports.platform, 'platform REST/auth listener');

    const houstonRouter = new Router();
    registerHoustonRoutes(houstonRouter, platform);
    const houstonServer = createListener({ name: 'houston', router: houstonRouter, requests, formatError: houstonErrors, onBug });
    servers.push(houstonServer);
    const houstonPort = await listen(houstonServer, ports.houston, 'Houston listener');

    const viewRouter = new Router();
    registerViewRoutes(viewRouter, platform);
    const viewServer = createListener({ name: 'view', router: viewRouter, requests, formatError: restErrors, onBug });
    const viewTls = ensureTlsIdentity(join(stateDir, 'keys'), options.opensslBin);
    const view = dualProtocol(viewServer, viewTls);
    closers.push(view.close);
    const viewPort = await listen(view.front, ports.view, 'Deployment View listener');

    const blobProxy = createBlobProxy(platform, requests);
    servers.push(blobProxy);
    const blobProxyPort = await listen(blobProxy, ports.blobProxy, 'blob proxy');

    platform.urls = {
      platform: `http://${publicHost}:${platformPort}`,
      houston: `http://${publicHost}:${houstonPort}`,
      blobProxy: `http://${publicHost}:${blobProxyPort}`,
      registryHost: '',
      registryInternal: '',
    };

    // Both start in parallel; allSettled so that one failing never leaves the other running unowned.
    const [azuriteResult, registryResult] = await Promise.allSettled([
      startAzurite({ bin: options.azuriteBin ?? join(repoRoot, 'node_modules', '.bin', 'azurite-blob'), dir: join(stateDir, 'azurite'), port: 0 }),
      startRegistry({
        bin: options.registryBin ?? 'docker-registry',
        dir: join(stateDir, 'registry'),
        port: ports.registry,
        realm: `http://127.0.0.1:${platformPort}/registry/token`,
        service: registryService,
        issuer: tokenIssuer,
        rootCertBundle: keys.certPath,
        notificationsUrl: `http://127.0.0.1:${platformPort}/registry/events`,
        notificationSecret,
      }),
    ]);
    for (const result of [azuriteResult, registryResult]) if (result.status === 'fulfilled') processes.push(result.value);
    if (azuriteResult.status === 'rejected') throw new Error(`Azurite: ${(azuriteResult.reason as Error).message}`);
    if (registryResult.status === 'rejected') throw new Error(`registry: ${(registryResult.reason as Error).message}`);
    const azurite = azuriteResult.value;
    const registry = registryResult.value;

    platform.urls.registryHost = options.registryPublicHost ?? `${publicHost}:${registry.port}`;
    platform.urls.registryInternal = `http://127.0.0.1:${registry.port}`;
    const blobs = new BlobStore(`http://127.0.0.1:${azurite.port}`, options.blobPublicUrl?.replace(/\/$/, '') ?? platform.urls.blobProxy);
    await Promise.all(seed.deployments.map((d) => blobs.ensureContainer(d.id)));
    platform.blobs = blobs;

    const seedTokens = await mintSeedTokens(platform);
    const tokensFile = join(stateDir, 'tokens.json');
    writeJsonAtomic(tokensFile, seedTokens, 0o600);

    const endpoints: Endpoints = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      stateDir,
      platform: {
        url: platform.urls.platform,
        port: platformPort,
        restUrl: `${platform.urls.platform}/v1`,
        restUrlV1alpha1: `${platform.urls.platform}/v1alpha1`,
        authConfigUrl: `${platform.urls.platform}/private/v1alpha1/cli/auth-config`,
        authDomainUrl: `${platform.urls.platform}/auth/`,
        updatesFeedUrl: `${platform.urls.platform}/updates/astronomer-runtime`,
        inspectionUrl: `${platform.urls.platform}/_platform`,
      },
      houston: {
        url: platform.urls.houston,
        graphqlUrl: `${platform.urls.houston}/v1`,
        port: houstonPort,
        dagServerUrlPattern: `${platform.urls.houston}/<releaseName>/dags/upload`,
        version: platform.softwareAppConfig().version,
      },
      view: {
        url: `http://${publicHost}:${viewPort}`,
        httpsUrl: `https://${publicHost}:${viewPort}`,
        port: viewPort,
        deploymentUrlPattern: `http://${publicHost}:${viewPort}/<workspaceId>/deployments/<deploymentId>`,
        tlsCertPath: viewTls.certPath,
      },
      registry: {
        host: platform.urls.registryHost,
        url: platform.urls.registryInternal,
        port: registry.port,
        pid: registry.pid,
        service: registryService,
        issuer: tokenIssuer,
        realm: `http://127.0.0.1:${platformPort}/registry/token`,
        logPath: registry.logPath,
        dataDir: join(stateDir, 'registry', 'data'),
      },
      blob: {
        proxyUrl: `${platform.urls.blobProxy}/${devAccountName}`,
        proxyPort: blobProxyPort,
        azuriteUrl: `http://127.0.0.1:${azurite.port}/${devAccountName}`,
        azuritePort: azurite.port,
        azuritePid: azurite.pid,
        accountName: devAccountName,
        accountKey: devAccountKey,
        dagBundleBlobName,
        logPath: azurite.logPath,
      },
      signingCertPath: keys.certPath,
      tokensFile,
      stateFile: join(stateDir, 'state.json'),
      seedFile,
    };
    const endpointsFile = join(stateDir, 'endpoints.json');
    writeJsonAtomic(endpointsFile, endpoints);

    let stopped: Promise<void> | undefined;
    return {
      endpoints,
      tokens: seedTokens,
      stateDir,
      platform,
      requests,
      stop() {
        stopped ??= stopAll().then(() => {
          if (existsSync(endpointsFile)) rmSync(endpointsFile, { force: true });
        });
        return stopped;
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

async function mintSeedTokens(platform: Platform): Promise<SeedTokens> {
  const seed = platform.seed;
  const now = platform.now();
  const apiTokens = await Promise.all(
    seed.apiTokens.map(async (t) => {
      const expiresAt = t.expired ? now - 3600_000 : now + t.expiresInSeconds * 1000;
      const scope = { organizationId: t.organizationId, workspaceId: t.workspaceId, deploymentId: t.deploymentId };
      return {
        id: t.id,
        name: t.name,
        token: await platform.tokens.apiToken(t.id, scope, expiresAt),
        scope: t.deploymentId ? ('DEPLOYMENT' as const) : t.workspaceId ? ('WORKSPACE' as const) : ('ORGANIZATION' as const),
        ...scope,
        permissions: permissionsFor(scope),
        expiresAt: new Date(expiresAt).toISOString(),
        expired: t.expired,
      };
    }),
  );
  const ttl = platform.options.accessTokenTtlSeconds;
  const email = (userId: string) => platform.user(userId)!.email;
  return {
    generatedAt: new Date(now).toISOString(),
    apiTokens,
    apiKeys: seed.apiKeys.map((k) => ({ ...k })),
    userAccessTokens: await Promise.all(
      seed.users.map(async (u) => ({
        userId: u.id,
        email: u.email,
        token: await platform.tokens.userAccessToken(u.id, seed.oauth.clientId, ttl, 'openid profile email offline_access'),
        expiresAt: new Date(now + ttl * 1000).toISOString(),
      })),
    ),
    refreshTokens: seed.refreshTokens.map((r) => ({
      token: r.token,
      userId: r.userId,
      email: email(r.userId),
      revoked: platform.state.get().refreshTokens[r.token]?.revoked ?? r.revoked,
    })),
    users: seed.users.map((u) => ({
      id: u.id,
      email: u.email,
      name: u.name,
      password: u.password,
      organizationIds: u.organizationIds,
      softwareWorkspaceIds: u.softwareWorkspaceIds,
    })),
    houston: {
      userTokens: await Promise.all(
        seed.users.map(async (u) => ({
          userId: u.id,
          email: u.email,
          token: await platform.tokens.houstonUserToken(u.id, platform.options.houstonTokenTtlSeconds),
        })),
      ),
      serviceAccounts: seed.software.serviceAccounts.map((s) => ({ ...s })),
    },
  };
}
