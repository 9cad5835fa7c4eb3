/**
 * Astro REST API v1 (and the one v1alpha1 call), as the deploy path uses it. Success is always 200 + JSON;
 * errors are `{message, requestId, statusCode}` (+ `fieldErrors` on validation failures).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import {
  createDeploy,
  createDeployRequest,
  createDeployRequestV1alpha1,
  finalizeDeploy,
  parseBody,
  updateDeployRequest,
  finalizeDeployRequest,
  validationError,
} from '../deploys.js';
import type { Platform } from '../platform.js';
import type { SeedDeployment, SeedOrganization } from '../seed.js';
import type { Principal } from '../tokens.js';
import { HttpError, sendHtml, sendJson, type RequestContext, type Router } from './http.js';

const sortFields = ['createdAt', 'name', 'updatedAt'] as const;

const intParam = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${name} must be between ${min} and ${max}`);

const listQuery = z.object({
  limit: intParam('limit', 0, 1000).optional(),
  offset: intParam('offset', 0, 1_000_000).optional(),
  sorts: z.array(z.string().regex(new RegExp(`^(${sortFields.join('|')}):(asc|desc)$`), 'sorts entries look like name:asc')).default([]),
});

const boolParam = z.enum(['true', 'false'], { message: 'must be true or false' }).optional();

function queryObject(url: URL, arrays: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    // Both `workspaceIds=a&workspaceIds=b` and `workspaceIds=a,b` occur in the wild.
    out[key] = arrays.includes(key) ? values.flatMap((v) => v.split(',')).filter((v) => v !== '') : values[values.length - 1];
  }
  return out;
}

function parseQuery<T>(schema: z.ZodType<T>, url: URL, arrays: string[] = []): T {
  const result = schema.safeParse(queryObject(url, ['sorts', ...arrays]));
  if (!result.success) throw validationError(result.error, 'query parameters');
  return result.data;
}

function page<T extends { name?: string; createdAt: string; updatedAt?: string }>(
  items: T[],
  query: { limit?: number; offset?: number; sorts: string[] },
): { items: T[]; limit: number; offset: number; totalCount: number } {
  const sorted = [...items];
  for (const sort of [...query.sorts].reverse()) {
    const [field, direction] = sort.split(':') as [(typeof sortFields)[number], 'asc' | 'desc'];
    sorted.sort((a, b) => {
      const x = String(a[field] ?? '');
      const y = String(b[field] ?? '');
      return (x < y ? -1 : x > y ? 1 : 0) * (direction === 'asc' ? 1 : -1);
    });
  }
  const limit = query.limit ?? 20;
  const offset = query.offset ?? 0;
  return { items: sorted.slice(offset, offset + limit), limit, offset, totalCount: items.length };
}

function requireOrganization(platform: Platform, principal: Principal, organizationId: string): SeedOrganization {
  const org = platform.organization(organizationId);
  if (!org) throw new HttpError(404, `organization ${organizationId} not found`);
  if (!platform.canAccessOrganization(principal, org.id)) {
    throw new HttpError(403, `this token does not have access to organization ${organizationId}`);
  }
  return org;
}

function requireDeployment(platform: Platform, principal: Principal, organizationId: string, deploymentId: string): SeedDeployment {
  requireOrganization(platform, principal, organizationId);
  const deployment = platform.deployment(deploymentId);
  if (!deployment || platform.organizationOf(deployment) !== organizationId) {
    throw new HttpError(404, `deployment ${deploymentId} not found in organization ${organizationId}`);
  }
  if (!platform.canAccessDeployment(principal, deployment)) {
    throw new HttpError(403, `this token does not have access to deployment ${deploymentId}`);
  }
  return deployment;
}

function requireDeploy(platform: Platform, deployment: SeedDeployment, deployId: string) {
  const deploy = platform.state.get().deploys.find((d) => d.id === deployId && d.deploymentId === deployment.id);
  if (!deploy) throw new HttpError(404, `deploy ${deployId} not found for deployment ${deployment.id}`);
  return deploy;
}

export function registerRestRoutes(router: Router, platform: Platform): void {
  const authed = (handler: (ctx: RequestContext, principal: Principal) => Promise<unknown> | unknown) => async (ctx: RequestContext) => {
    const principal = await platform.authenticate(ctx.req.headers.authorization);
    const body = await handler(ctx, principal);
    sendJson(ctx.res, 200, body);
  };

  router.on(
    'GET',
    '/v1/users/self',
    authed((ctx, principal) => {
      parseQuery(z.object({ createIfNotExist: boolParam }).loose(), ctx.url);
      if (principal.kind !== 'user') {
        throw new HttpError(403, 'API tokens and API keys are not users: /users/self needs a user token from `astro login`');
      }
      const user = platform.user(principal.userId)!;
      return {
        id: user.id,
        username: user.email,
        fullName: user.name,
        avatarUrl: '',
        status: 'ACTIVE',
        ...(user.organizationIds[0] ? { organizationId: user.organizationIds[0] } : {}),
        createdAt: user.createdAt,
        updatedAt: user.createdAt,
      };
    }),
  );

  router.on(
    'GET',
    '/v1/organizations',
    authed((ctx, principal) => {
      const query = parseQuery(
        listQuery.extend({
          product: z.enum(['HOSTED', 'HYBRID']).optional(),
          astronomerProduct: z.enum(['ASTRO']).optional(),
          productPlan: z.string().optional(),
        }),
        ctx.url,
      );
      const orgs = platform.seed.organizations
        .filter((o) => platform.canAccessOrganization(principal, o.id))
        .filter((o) => !query.product || o.product === query.product)
        .map((o) => platform.organizationView(o));
      const { items, ...paging } = page(orgs, query);
      return { organizations: items, ...paging };
    }),
  );

  router.on(
    'GET',
    '/v1/organizations/:org',
    authed((ctx, principal) => {
      parseQuery(z.object({ isLookUpOnly: boolParam }).loose(), ctx.url);
      return platform.organizationView(requireOrganization(platform, principal, ctx.params.org!));
    }),
  );

  router.on(
    'GET',
    '/v1/organizations/:org/workspaces',
    authed((ctx, principal) => {
      const query = parseQuery(listQuery.extend({ workspaceIds: z.array(z.string()).optional(), names: z.array(z.string()).optional() }), ctx.url, [
        'workspaceIds',
        'names',
      ]);
      requireOrganization(platform, principal, ctx.params.org!);
      const workspaces = platform.seed.workspaces
        .filter((w) => w.organizationId === ctx.params.org && platform.canAccessWorkspace(principal, w))
        .filter((w) => !query.workspaceIds?.length || query.workspaceIds.includes(w.id))
        .filter((w) => !query.names?.length || query.names.includes(w.name))
        .map((w) => platform.workspaceView(w));
      const { items, ...paging } = page(workspaces, query);
      return { workspaces: items, ...paging };
    }),
  );

  router.on(
    'GET',
    '/v1/organizations/:org/workspaces/:ws',
    authed((ctx, principal) => {
      requireOrganization(platform, principal, ctx.params.org!);
      const ws = platform.workspace(ctx.params.ws!);
      if (!ws || ws.organizationId !== ctx.params.org) throw new HttpError(404, `workspace ${ctx.params.ws} not found in organization ${ctx.params.org}`);
      if (!platform.canAccessWorkspace(principal, ws)) throw new HttpError(403, `this token does not have access to workspace ${ws.id}`);
      return platform.workspaceView(ws);
    }),
  );

  router.on(
    'GET',
    '/v1/organizations/:org/deployments',
    authed((ctx, principal) => {
      const query = parseQuery(
        listQuery.extend({
          deploymentIds: z.array(z.string()).optional(),
          names: z.array(z.string()).optional(),
          workspaceIds: z.array(z.string()).optional(),
        }),
        ctx.url,
        ['deploymentIds', 'names', 'workspaceIds'],
      );
      requireOrganization(platform, principal, ctx.params.org!);
      const deployments = platform.seed.deployments
        .filter((d) => platform.organizationOf(d) === ctx.params.org && platform.canAccessDeployment(principal, d))
        .filter((d) => !query.deploymentIds?.length || query.deploymentIds.includes(d.id))
        .filter((d) => !query.names?.length || query.names.includes(d.name))
        .filter((d) => !query.workspaceIds?.length || query.workspaceIds.includes(d.workspaceId))
        .map((d) => platform.deploymentView(d));
      const { items, ...paging } = page(deployments, query);
      return { deployments: items, ...paging };
    }),
  );

  router.on(
    'GET',
    '/v1/organizations/:org/deployments/:dep',
    authed((ctx, principal) => platform.deploymentView(requireDeployment(platform, principal, ctx.params.org!, ctx.params.dep!))),
  );

  router.on(
    'GET',
    '/v1/organizations/:org/clusters/:cluster',
    authed((ctx, principal) => {
      requireOrganization(platform, principal, ctx.params.org!);
      const cluster = platform.clusterView(ctx.params.cluster!);
      if (!cluster || cluster.organizationId !== ctx.params.org)
        throw new HttpError(404, `cluster ${ctx.params.cluster} not found in organization ${ctx.params.org}`);
      return cluster;
    }),
  );

  router.on(
    'GET',
    '/v1/organizations/:org/deployment-options',
    authed((ctx, principal) => {
      const query = parseQuery(
        z.object({
          deploymentId: z.string().optional(),
          deploymentType: z.enum(['DEDICATED', 'HYBRID', 'STANDARD']).optional(),
          executor: z.enum(['ASTRO', 'CELERY', 'KUBERNETES']).optional(),
          cloudProvider: z.enum(['AWS', 'AZURE', 'GCP']).optional(),
        }),
        ctx.url,
      );
      requireOrganization(platform, principal, ctx.params.org!);
      if (query.deploymentId) requireDeployment(platform, principal, ctx.params.org!, query.deploymentId);
      return {
        runtimeReleases: platform.seed.runtimeReleases.map((r) => ({
          version: r.version,
          airflowVersion: r.airflowVersion,
          channel: r.channel,
          releaseDate: r.releaseDate,
          airflowDatabaseMigration: r.airflowDatabaseMigration,
          stellarDatabaseMigration: r.stellarDatabaseMigration,
        })),
        executors: ['ASTRO', 'CELERY', 'KUBERNETES'],
        schedulerMachines: [],
        workerMachines: [],
        workloadIdentityOptions: [],
      };
    }),
  );

  const createDeployHandler = (version: 'v1' | 'v1alpha1') =>
    authed(async (ctx, principal) => {
      const deployment = requireDeployment(platform, principal, ctx.params.org!, ctx.params.dep!);
      const raw = await ctx.json();
      let request: Parameters<typeof createDeploy>[3];
      if (version === 'v1') {
        request = parseBody(createDeployRequest, raw, 'CreateDeployRequest');
      } else {
        const alpha = parseBody(createDeployRequestV1alpha1, raw, 'CreateDeployRequest');
        const type = alpha.type === 'BUNDLE' ? 'BUNDLE' : alpha.type === 'DAG' ? 'DAG_ONLY' : 'IMAGE_AND_DAG';
        request = { type, description: alpha.description, git: alpha.git, dagBundleName: alpha.dagBundleName };
      }
      const { deploy, dagsUploadUrl } = await createDeploy(platform, principal, deployment, request);
      return platform.deployView(deploy, dagsUploadUrl);
    });
  router.on('POST', '/v1/organizations/:org/deployments/:dep/deploys', createDeployHandler('v1'));
  router.on('POST', '/v1alpha1/organizations/:org/deployments/:dep/deploys', createDeployHandler('v1alpha1'));

  router.on(
    'GET',
    '/v1/organizations/:org/deployments/:dep/deploys',
    authed((ctx, principal) => {
      const query = parseQuery(listQuery, ctx.url);
      const deployment = requireDeployment(platform, principal, ctx.params.org!, ctx.params.dep!);
      const deploys = platform.state
        .get()
        .deploys.filter((d) => d.deploymentId === deployment.id)
        .map((d) => platform.deployView(d));
      const { items, ...paging } = page(deploys, { ...query, sorts: query.sorts.length ? query.sorts : ['createdAt:desc'] });
      return { deploys: items, ...paging };
    }),
  );

  router.on(
    'GET',
    '/v1/organizations/:org/deployments/:dep/deploys/:deploy',
    authed((ctx, principal) => {
      const deployment = requireDeployment(platform, principal, ctx.params.org!, ctx.params.dep!);
      return platform.deployView(requireDeploy(platform, deployment, ctx.params.deploy!));
    }),
  );

  router.on(
    'POST',
    '/v1/organizations/:org/deployments/:dep/deploys/:deploy',
    authed(async (ctx, principal) => {
      const deployment = requireDeployment(platform, principal, ctx.params.org!, ctx.params.dep!);
      const deploy = requireDeploy(platform, deployment, ctx.params.deploy!);
      const request = parseBody(updateDeployRequest, await ctx.json(), 'UpdateDeployRequest');
      const updated = platform.state.update((s) => {
        const record = s.deploys.find((d) => d.id === deploy.id)!;
        if (request.description !== undefined) record.description = request.description;
        record.updatedAt = platform.isoNow();
        record.updatedBy = platform.describePrincipal(principal);
        return record;
      });
      return platform.deployView(updated);
    }),
  );

  router.on(
    'POST',
    '/v1/organizations/:org/deployments/:dep/deploys/:deploy/finalize',
    authed(async (ctx, principal) => {
      const deployment = requireDeployment(platform, principal, ctx.params.org!, ctx.params.dep!);
      const deploy = requireDeploy(platform, deployment, ctx.params.deploy!);
      const request = parseBody(finalizeDeployRequest, await ctx.json(), 'FinalizeDeployRequest');
      return platform.deployView(await finalizeDeploy(platform, principal, deployment, deploy, request));
    }),
  );

  router.on('GET', '/updates/astronomer-runtime', async (ctx) => {
    let text: string;
    try {
      text = await readFile(platform.options.updatesFeedPath, 'utf8');
    } catch (error) {
      throw new HttpError(404, `the updates feed fixture ${platform.options.updatesFeedPath} cannot be read: ${(error as Error).message}`);
    }
    sendJson(ctx.res, 200, JSON.parse(text));
  });

  // webServerUrl points here, so the link a deploy prints opens something rather than nothing.
  router.on('GET', '/airflow/:namespace', (ctx) => {
    const deployment = platform.seed.deployments.find((d) => d.namespace === ctx.params.namespace);
    if (!deployment) throw new HttpError(404, `no deployment with namespace ${ctx.params.namespace}`);
    const view = platform.deploymentView(deployment);
    sendHtml(
      ctx.res,
      200,
      `<!doctype html><meta charset="utf-8"><title>${escapeHtml(deployment.name)}</title>` +
        `<h1>${escapeHtml(deployment.name)}</h1><p>Local platform stand-in for the Airflow UI.</p>` +
        `<p>Status: <b>${view.status}</b>; image tag: <code>${escapeHtml(view.imageTag || '(none)')}</code>; ` +
        `DAG bundle: <code>${escapeHtml(view.dagTarballVersion ?? '(none)')}</code></p>`,
    );
  });
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
