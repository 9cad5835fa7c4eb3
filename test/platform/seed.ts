/**
 * The seed: who exists on the local platform before any test runs. Loaded from `seed.json` (or a file the caller
 * names), validated here so a broken seed fails at start with the offending path instead of deep inside a handler.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const defaultSeedPath = fileURLToPath(new URL('./seed.json', import.meta.url));

const rfc3339 = z.iso.datetime({ offset: true });

const user = z.object({
  id: z.string().min(1),
  email: z.email(),
  name: z.string().min(1),
  /** Used by Houston `createToken` (Software local auth). */
  password: z.string().min(1),
  organizationIds: z.array(z.string()).default([]),
  softwareWorkspaceIds: z.array(z.string()).default([]),
  createdAt: rfc3339,
});

const organization = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  product: z.enum(['HOSTED', 'HYBRID']),
  status: z.enum(['ACTIVE', 'INACTIVE', 'SUSPENDED']).default('ACTIVE'),
  /** `productPlans[0].productPlanName`; Astronomer's CLI reads the plan list when it picks an organization. */
  productPlan: z.enum(['BASIC', 'BUSINESS', 'BUSINESS_CRITICAL', 'DEVELOPER', 'ENTERPRISE', 'TRIAL']).default('BUSINESS'),
  paymentMethod: z.enum(['AWS_MARKETPLACE', 'AZURE_MARKETPLACE', 'CREDIT_CARD', 'GCP_MARKETPLACE', 'INVOICE']).default('INVOICE'),
  createdAt: rfc3339,
});

const workspace = z.object({
  id: z.string().min(1),
  organizationId: z.string().min(1),
  name: z.string().min(1),
  description: z.string().default(''),
  cicdEnforcedDefault: z.boolean().default(false),
  createdAt: rfc3339,
});

const deployment = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{2,62}$/, 'deployment ids double as blob container names: 3-63 lower-case letters, digits, hyphens'),
  workspaceId: z.string().min(1),
  name: z.string().min(1),
  description: z.string().default(''),
  namespace: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  runtimeVersion: z.string().min(1),
  airflowVersion: z.string().min(1),
  type: z.enum(['DEDICATED', 'HYBRID', 'STANDARD']),
  executor: z.enum(['ASTRO', 'CELERY', 'KUBERNETES']).default('ASTRO'),
  cloudProvider: z.enum(['AWS', 'AZURE', 'GCP']).default('AWS'),
  region: z.string().default('us-east-1'),
  clusterId: z.string().optional(),
  schedulerSize: z.enum(['SMALL', 'MEDIUM', 'LARGE', 'EXTRA_LARGE']).default('SMALL'),
  isDagDeployEnabled: z.boolean(),
  isCicdEnforced: z.boolean().default(false),
  isHighAvailability: z.boolean().default(false),
  isDevelopmentMode: z.boolean().default(false),
  /** Status before any deploy reaches it; afterwards it is derived from the last finalized deploy. */
  status: z.enum(['CREATING', 'DEPLOYING', 'HEALTHY', 'HIBERNATING', 'UNHEALTHY', 'UNKNOWN']).default('HEALTHY'),
  createdAt: rfc3339,
});

const runtimeRelease = z.object({
  version: z.string().min(1),
  airflowVersion: z.string().min(1),
  channel: z.string().default('stable'),
  releaseDate: rfc3339,
  airflowDatabaseMigration: z.boolean().default(false),
  stellarDatabaseMigration: z.boolean().default(false),
});

const apiToken = z
  .object({
    id: z.string().min(1),
    name: z.string().min(1),
    organizationId: z.string().min(1),
    workspaceId: z.string().optional(),
    deploymentId: z.string().optional(),
    /** Minted already expired, so tests can check that expiry is enforced. */
    expired: z.boolean().default(false),
    expiresInSeconds: z
      .number()
      .int()
      .positive()
      .default(30 * 24 * 3600),
  })
  .refine((t) => !(t.deploymentId && !t.workspaceId), { message: 'a deployment-scoped token also names its workspaceId' });

const apiKey = z.object({
  clientId: z.string().min(1),
  clientSecret: z.string().min(8),
  organizationId: z.string().min(1),
  workspaceId: z.string().optional(),
  deploymentId: z.string().optional(),
});

const refreshToken = z.object({
  token: z.string().min(16),
  userId: z.string().min(1),
  revoked: z.boolean().default(false),
});

const dagDeploymentType = z.enum(['image', 'dag_deploy', 'volume', 'git_sync']);

const softwareDeployment = z.object({
  id: z.string().min(1),
  workspaceId: z.string().min(1),
  label: z.string().min(1),
  description: z.string().default(''),
  releaseName: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  dagDeploymentType,
  runtimeVersion: z.string().min(1),
  runtimeAirflowVersion: z.string().min(1),
  airflowVersion: z.string().default(''),
  desiredRuntimeVersion: z.string().default(''),
  version: z.string().default('1.0.0'),
  clusterId: z.string().min(1),
  executor: z.string().default('CeleryExecutor'),
  /** Tag of the image currently deployed (`deployInfo.current`); empty before the first push. */
  currentTag: z.string().default(''),
  createdAt: rfc3339,
});

const software = z.object({
  /** Platform version reported by `appConfig.version`; the CLI picks its query shapes from it. */
  version: z.string().default('1.0.0'),
  baseDomain: z.string().default('localhost'),
  featureFlags: z.record(z.string(), z.boolean()),
  /** Custom (BYO) registry host; `{{registryHost}}` is replaced by the local registry's `host:port`. */
  byoUpdateRegistryHost: z.string().default(''),
  authConfig: z.object({
    localEnabled: z.boolean(),
    publicSignup: z.boolean(),
    initialSignup: z.boolean(),
    providers: z.array(z.object({ name: z.string(), displayName: z.string(), url: z.string() })),
  }),
  workspaces: z.array(z.object({ id: z.string().min(1), label: z.string().min(1), description: z.string().default(''), createdAt: rfc3339 })),
  deployments: z.array(softwareDeployment),
  serviceAccounts: z.array(z.object({ id: z.string().min(1), label: z.string().min(1), apiKey: z.string().min(16), workspaceId: z.string().min(1) })),
  deploymentConfig: z.object({
    airflowImages: z.array(z.object({ version: z.string(), tag: z.string() })),
    airflowVersions: z.array(z.string()),
    defaultAirflowImageTag: z.string(),
  }),
});

export const seedSchema = z
  .object({
    oauth: z.object({ clientId: z.string().min(1), audience: z.string().min(1) }),
    /** The user the browser login page preselects (`login_hint` overrides it). */
    defaultLoginUserId: z.string().min(1),
    users: z.array(user).min(1),
    organizations: z.array(organization).min(1),
    workspaces: z.array(workspace),
    deployments: z.array(deployment),
    runtimeReleases: z.array(runtimeRelease).min(1),
    apiTokens: z.array(apiToken),
    apiKeys: z.array(apiKey),
    refreshTokens: z.array(refreshToken),
    software,
  })
  .superRefine((seed, ctx) => {
    const ids = (items: { id: string }[]) => new Set(items.map((i) => i.id));
    const orgs = ids(seed.organizations);
    const workspaces = ids(seed.workspaces);
    const deployments = new Map(seed.deployments.map((d) => [d.id, d]));
    const users = ids(seed.users);
    const softwareWorkspaces = ids(seed.software.workspaces);
    const problem = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });

    if (!users.has(seed.defaultLoginUserId)) problem(['defaultLoginUserId'], `unknown user ${seed.defaultLoginUserId}`);
    seed.users.forEach((u, i) => {
      u.organizationIds.forEach((o) => orgs.has(o) || problem(['users', i, 'organizationIds'], `unknown organization ${o}`));
      u.softwareWorkspaceIds.forEach((w) => softwareWorkspaces.has(w) || problem(['users', i, 'softwareWorkspaceIds'], `unknown Software workspace ${w}`));
    });
    seed.workspaces.forEach((w, i) => orgs.has(w.organizationId) || problem(['workspaces', i], `unknown organization ${w.organizationId}`));
    seed.deployments.forEach((d, i) => workspaces.has(d.workspaceId) || problem(['deployments', i], `unknown workspace ${d.workspaceId}`));
    const namespaces = new Set<string>();
    for (const [i, name] of [...seed.deployments.map((d) => d.namespace), ...seed.software.deployments.map((d) => d.releaseName)].entries()) {
      if (namespaces.has(name)) problem(['deployments', i], `namespace/releaseName ${name} is used twice (they share one registry)`);
      namespaces.add(name);
    }
    const checkScope = (path: (string | number)[], t: { organizationId: string; workspaceId?: string; deploymentId?: string }) => {
      if (!orgs.has(t.organizationId)) problem(path, `unknown organization ${t.organizationId}`);
      if (t.workspaceId && !seed.workspaces.some((w) => w.id === t.workspaceId && w.organizationId === t.organizationId)) {
        problem(path, `workspace ${t.workspaceId} is not in organization ${t.organizationId}`);
      }
      if (t.deploymentId && deployments.get(t.deploymentId)?.workspaceId !== t.workspaceId) {
        problem(path, `deployment ${t.deploymentId} is not in workspace ${t.workspaceId}`);
      }
    };
    seed.apiTokens.forEach((t, i) => checkScope(['apiTokens', i], t));
    seed.apiKeys.forEach((k, i) => checkScope(['apiKeys', i], k));
    seed.refreshTokens.forEach((r, i) => users.has(r.userId) || problem(['refreshTokens', i], `unknown user ${r.userId}`));
    seed.software.deployments.forEach(
      (d, i) => softwareWorkspaces.has(d.workspaceId) || problem(['software', 'deployments', i], `unknown workspace ${d.workspaceId}`),
    );
    seed.software.serviceAccounts.forEach(
      (s, i) => softwareWorkspaces.has(s.workspaceId) || problem(['software', 'serviceAccounts', i], `unknown workspace ${s.workspaceId}`),
    );
  });

export type Seed = z.infer<typeof seedSchema>;
export type SeedUser = Seed['users'][number];
export type SeedOrganization = Seed['organizations'][number];
export type SeedWorkspace = Seed['workspaces'][number];
export type SeedDeployment = Seed['deployments'][number];
export type SeedApiToken = Seed['apiTokens'][number];
export type SeedApiKey = Seed['apiKeys'][number];
export type SoftwareSeed = Seed['software'];
export type SeedSoftwareDeployment = SoftwareSeed['deployments'][number];
export type DagDeploymentType = z.infer<typeof dagDeploymentType>;

/** Parses a seed document; the error lists every problem with its JSON path. */
export function parseSeed(value: unknown, source = 'seed'): Seed {
  const result = seedSchema.safeParse(value);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`invalid ${source}:\n${lines.join('\n')}`);
  }
  return result.data;
}

export function loadSeed(path: string = defaultSeedPath): Seed {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read seed file ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`seed file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseSeed(json, `seed file ${path}`);
}
