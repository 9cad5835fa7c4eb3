/**
 * Test-only endpoints under `/_platform/`: read what the platform recorded (state, every request it received),
 * mint API tokens on demand, and turn fault knobs. Nothing here exists on a real Astronomer platform.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseBody } from '../deploys.js';
import type { Platform } from '../platform.js';
import { permissionsFor } from '../tokens.js';
import { HttpError, sendJson, type RequestLog, type Router } from './http.js';

const mintRequest = z
  .object({
    organizationId: z.string().min(1),
    workspaceId: z.string().min(1).optional(),
    deploymentId: z.string().min(1).optional(),
    /** Negative values mint an already expired token. */
    expiresInSeconds: z
      .number()
      .int()
      .min(-365 * 24 * 3600)
      .max(365 * 24 * 3600)
      .default(3600),
    name: z.string().optional(),
  })
  .strict();

const faultKnob = z.object({ failNext: z.number().int().min(0).max(1000), status: z.number().int().min(400).max(599).default(503) }).strict();
/** The next finalized deploys roll out to UNHEALTHY with this reason, as when a scheduler crashes on new code. */
const rolloutKnob = z
  .object({ failNext: z.number().int().min(0).max(1000), reason: z.string().min(1).max(500).default('the scheduler failed to start') })
  .strict();
const faultsRequest = z.object({ blob: faultKnob.optional(), dagServer: faultKnob.optional(), rollout: rolloutKnob.optional() }).strict();

const appConfigRequest = z
  .object({
    version: z.string().min(1).optional(),
    featureFlags: z.record(z.string(), z.boolean()).optional(),
    byoUpdateRegistryHost: z.string().optional(),
  })
  .strict();

const requestsQuery = z.object({
  since: z.string().regex(/^\d+$/).transform(Number).optional(),
  listener: z.enum(['platform', 'houston', 'blob-proxy', 'view']).optional(),
  path: z.string().optional(),
  method: z.string().optional(),
});

export function registerInspectionRoutes(router: Router, platform: Platform, requests: RequestLog): void {
  router.on('GET', '/_platform/health', (ctx) => sendJson(ctx.res, 200, { ok: true, blobReady: platform.blobs !== undefined }));

  router.on('GET', '/_platform/state', (ctx) => {
    const state = platform.state.get();
    sendJson(ctx.res, 200, {
      deployments: platform.seed.deployments.map((d) => ({
        ...platform.deploymentView(d),
        deployed: state.deployments[d.id] ?? {},
      })),
      deploys: state.deploys,
      blobVersions: state.blobVersions,
      registryPushes: state.registryPushes,
      software: {
        appConfig: platform.softwareAppConfig(),
        deployments: platform.seed.software.deployments.map((d) => ({
          id: d.id,
          releaseName: d.releaseName,
          label: d.label,
          workspaceId: d.workspaceId,
          dagDeploymentType: d.dagDeploymentType,
          deployInfo: platform.softwareDeployInfo(d),
          deployed: state.software.deployments[d.id] ?? {},
        })),
        dagUploads: state.software.dagUploads,
      },
      faults: platform.faults,
    });
  });

  router.on('GET', '/_platform/requests', (ctx) => {
    const parsed = requestsQuery.safeParse(Object.fromEntries(ctx.url.searchParams));
    if (!parsed.success) throw new HttpError(400, `invalid query: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const { since, listener, path, method } = parsed.data;
    sendJson(ctx.res, 200, { lastSeq: requests.lastSeq, requests: requests.list({ since, listener, pathPrefix: path, method }) });
  });

  router.on('DELETE', '/_platform/requests', (ctx) => {
    requests.clear();
    sendJson(ctx.res, 200, { cleared: true, lastSeq: requests.lastSeq });
  });

  router.on('POST', '/_platform/api-tokens', async (ctx) => {
    const request = parseBody(mintRequest, await ctx.json(), 'api-token request');
    if (!platform.organization(request.organizationId)) throw new HttpError(404, `organization ${request.organizationId} not found`);
    if (request.workspaceId) {
      const ws = platform.workspace(request.workspaceId);
      if (!ws || ws.organizationId !== request.organizationId)
        throw new HttpError(404, `workspace ${request.workspaceId} not found in ${request.organizationId}`);
    }
    if (request.deploymentId) {
      const d = platform.deployment(request.deploymentId);
      if (!d || d.workspaceId !== request.workspaceId) throw new HttpError(400, 'a deployment-scoped token names the deployment and its workspaceId');
    }
    const id = `cltok${randomBytes(10).toString('hex')}`;
    const expiresAt = platform.now() + request.expiresInSeconds * 1000;
    const scope = { organizationId: request.organizationId, workspaceId: request.workspaceId, deploymentId: request.deploymentId };
    const token = await platform.tokens.apiToken(id, scope, expiresAt);
    platform.state.update((s) => {
      s.mintedApiTokens.push({ id, ...scope, expiresAt: new Date(expiresAt).toISOString() });
    });
    sendJson(ctx.res, 200, { id, token, permissions: permissionsFor(scope), expiresAt: new Date(expiresAt).toISOString() });
  });

  router.on('POST', '/_platform/api-tokens/:id/revoke', (ctx) => {
    const id = ctx.params.id!;
    platform.state.update((s) => {
      if (!s.revokedApiTokenIds.includes(id)) s.revokedApiTokenIds.push(id);
    });
    sendJson(ctx.res, 200, { id, revoked: true });
  });

  router.on('POST', '/_platform/faults', async (ctx) => {
    const request = parseBody(faultsRequest, await ctx.json(), 'faults request');
    if (request.blob) platform.faults.blob = { remaining: request.blob.failNext, status: request.blob.status };
    if (request.dagServer) platform.faults.dagServer = { remaining: request.dagServer.failNext, status: request.dagServer.status };
    if (request.rollout) platform.faults.rollout = { remaining: request.rollout.failNext, reason: request.rollout.reason };
    sendJson(ctx.res, 200, platform.faults);
  });

  router.on('PATCH', '/_platform/houston/app-config', async (ctx) => {
    const request = parseBody(appConfigRequest, await ctx.json(), 'app-config request');
    platform.state.update((s) => {
      const current = s.software.appConfig;
      if (request.version !== undefined) current.version = request.version;
      if (request.featureFlags !== undefined) current.featureFlags = { ...current.featureFlags, ...request.featureFlags };
      if (request.byoUpdateRegistryHost !== undefined) current.byoUpdateRegistryHost = request.byoUpdateRegistryHost;
    });
    sendJson(ctx.res, 200, platform.softwareAppConfig());
  });
}
