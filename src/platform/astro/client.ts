/**
 * Client for the Astro REST API v1: the control-plane port the deploy and login services use.
 */
import { ApiError, HttpClient, UnauthorizedError, type FetchPort } from '../http.js';
import type { RetryPolicy } from '../../util/retry.js';
import {
  deploymentOptionsSchema,
  deploymentSchema,
  deploymentsPageSchema,
  deploySchema,
  deploysPageSchema,
  organizationSchema,
  organizationsPageSchema,
  selfUserSchema,
  workspacesPageSchema,
  type CreateDeployRequest,
  type Deploy,
  type Deployment,
  type DeploymentOptions,
  type Organization,
  type Workspace,
} from './schemas.js';

/** What deploy and login need from Astro; the REST client implements it, tests may fake it. */
export interface AstroControlPlane {
  getSelfUser(signal?: AbortSignal): Promise<{ id: string }>;
  listOrganizations(signal?: AbortSignal): Promise<Organization[]>;
  getOrganization(org: string, signal?: AbortSignal): Promise<Organization>;
  listWorkspaces(org: string, signal?: AbortSignal): Promise<Workspace[]>;
  listDeployments(org: string, filter?: { workspaceIds?: string[]; names?: string[] }, signal?: AbortSignal): Promise<Deployment[]>;
  getDeployment(org: string, deploymentId: string, signal?: AbortSignal): Promise<Deployment>;
  getDeploymentOptions(org: string, signal?: AbortSignal): Promise<DeploymentOptions>;
  createDeploy(org: string, deploymentId: string, body: CreateDeployRequest, signal?: AbortSignal): Promise<Deploy>;
  finalizeDeploy(org: string, deploymentId: string, deployId: string, body: { dagTarballVersion?: string }, signal?: AbortSignal): Promise<Deploy>;
  /** One deploy, e.g. to learn whether a finalize whose answer never came was applied. */
  getDeploy?(org: string, deploymentId: string, deployId: string, signal?: AbortSignal): Promise<Deploy>;
  /** The newest deploys of a Deployment, newest first: what it runs now and what earlier runs recorded with it. */
  listDeploys?(org: string, deploymentId: string, limit: number, signal?: AbortSignal): Promise<Deploy[]>;
}

export interface AstroClientOptions {
  baseUrl: string;
  /** The context's token, sent verbatim (`Bearer <jwt>`). A function so a refreshed token is picked up. */
  token: () => string | undefined;
  clientIdentifier: string;
  clientVersion: string;
  fetch?: FetchPort;
  retry?: RetryPolicy;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
}

const MAX_PAGES = 100;

export function createAstroClient(options: AstroClientOptions): AstroControlPlane {
  const http = client(options.baseUrl);
  // dagBundleName exists only on the v1alpha1 deploy API; upload and finalize then continue on v1.
  const alpha = client(options.baseUrl.replace(/\/v1\/?$/, '/v1alpha1'));
  function client(baseUrl: string): HttpClient {
    return new HttpClient({
      baseUrl,
      service: 'the Astro API',
      fetch: options.fetch,
      retry: options.retry,
      onRetry: options.onRetry,
      headers: () => {
        const token = options.token();
        return {
          ...(token ? { authorization: token } : {}),
          'x-astro-client-identifier': options.clientIdentifier,
          'x-astro-client-version': options.clientVersion,
          'x-client-os-identifier': `${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`,
          'user-agent': `astro-cli/${options.clientVersion}`,
          accept: 'application/json',
        };
      },
    });
  }

  async function collect<T>(what: string, pageSize: number, fetchPage: (offset: number) => Promise<{ items: T[]; total?: number }>): Promise<T[]> {
    const items: T[] = [];
    for (let page = 0; page < MAX_PAGES; page++) {
      const { items: got, total } = await fetchPage(items.length);
      items.push(...got);
      const lastPage = total === undefined ? got.length < pageSize : items.length >= total;
      if (got.length === 0 || lastPage) return items;
    }
    throw new ApiError(`aborted listing ${what} after ${MAX_PAGES} pages`, undefined);
  }

  const enc = encodeURIComponent;

  return {
    getSelfUser: (signal) => http.request({ path: 'users/self', query: { createIfNotExist: true }, schema: selfUserSchema, signal }),

    listOrganizations: (signal) =>
      collect('organizations', 100, async (offset) => {
        const page = await http.request({ path: 'organizations', query: { limit: 100, offset }, schema: organizationsPageSchema, signal });
        return { items: page.organizations, total: page.totalCount };
      }),

    getOrganization: (org, signal) => http.request({ path: `organizations/${enc(org)}`, schema: organizationSchema, signal }),

    listWorkspaces: (org, signal) =>
      collect('workspaces', 1000, async (offset) => {
        const page = await http.request({
          path: `organizations/${enc(org)}/workspaces`,
          query: { limit: 1000, offset, sorts: ['name:asc'] },
          schema: workspacesPageSchema,
          signal,
        });
        return { items: page.workspaces, total: page.totalCount };
      }),

    listDeployments: (org, filter = {}, signal) =>
      collect('deployments', 1000, async (offset) => {
        const page = await http.request({
          path: `organizations/${enc(org)}/deployments`,
          query: { limit: 1000, offset, workspaceIds: filter.workspaceIds, names: filter.names },
          schema: deploymentsPageSchema,
          signal,
        });
        return { items: page.deployments, total: page.totalCount };
      }),

    getDeployment: (org, id, signal) => http.request({ path: `organizations/${enc(org)}/deployments/${enc(id)}`, schema: deploymentSchema, signal }),

    getDeploymentOptions: (org, signal) => http.request({ path: `organizations/${enc(org)}/deployment-options`, schema: deploymentOptionsSchema, signal }),

    createDeploy: (org, id, { dagBundleName, ...body }, signal) =>
      (dagBundleName === undefined ? http : alpha).request({
        method: 'POST',
        path: `organizations/${enc(org)}/deployments/${enc(id)}/deploys`,
        body: dagBundleName === undefined ? body : { ...body, type: body.type === 'DAG_ONLY' ? 'DAG' : 'IMAGE', dagBundleName },
        schema: deploySchema,
        idempotent: false,
        signal,
      }),

    getDeploy: (org, id, deployId, signal) =>
      http.request({ path: `organizations/${enc(org)}/deployments/${enc(id)}/deploys/${enc(deployId)}`, schema: deploySchema, signal }),

    listDeploys: async (org, id, limit, signal) =>
      (
        await http.request({
          path: `organizations/${enc(org)}/deployments/${enc(id)}/deploys`,
          query: { limit, offset: 0, sorts: ['createdAt:desc'] },
          schema: deploysPageSchema,
          signal,
        })
      ).deploys,

    finalizeDeploy: async (org, id, deployId, body, signal) => {
      const deployPath = `organizations/${enc(org)}/deployments/${enc(id)}/deploys/${enc(deployId)}`;
      try {
        return await http.request({
          method: 'POST',
          path: `${deployPath}/finalize`,
          body,
          schema: deploySchema,
          // A repeated finalize changes nothing (the platform refuses it), so transport failures may be retried.
          idempotent: true,
          signal,
        });
      } catch (error) {
        // A finalize whose answer was lost was applied all the same, and its retry is refused as "already finalized";
        // one that failed in transit may or may not have arrived. The deploy itself says which.
        if (signal?.aborted || !(error instanceof ApiError) || error instanceof UnauthorizedError || error.status === 403) throw error;
        const deploy = await http.request({ path: deployPath, schema: deploySchema, signal }).catch(() => undefined);
        if (deploy?.status !== undefined && deploy.status !== 'INITIALIZED') return deploy;
        throw error;
      }
    },
  };
}
