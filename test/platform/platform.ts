/**
 * The platform's model: seed + persisted state, who may see what, and the JSON views the REST API answers with.
 * Listeners (REST, auth, Houston, registry token, blob proxy, DAG server) all work through one `Platform`.
 */
import type { BlobStore } from './blob.js';
import type { SigningKeys } from './keys.js';
import { HttpError } from './server/http.js';
import type { Seed, SeedDeployment, SeedOrganization, SeedSoftwareDeployment, SeedUser, SeedWorkspace } from './seed.js';
import type { DeployRecord, StateStore } from './state.js';
import { TokenRejected, type HoustonPrincipal, type Principal, type TokenService } from './tokens.js';

export interface PlatformOptions {
  /** Host name put in every URL handed to clients (auth domainUrl, imageRepository, SAS URLs, Houston urls). */
  publicHost: string;
  /** How long a Deployment reports DEPLOYING after a finalize before it turns HEALTHY / UNHEALTHY. */
  healthDelayMs: number;
  sasTtlSeconds: number;
  accessTokenTtlSeconds: number;
  authCodeTtlSeconds: number;
  houstonTokenTtlSeconds: number;
  registryTokenTtlSeconds: number;
  /** Houston `appConfig.version` unless the admin endpoint overrides it. */
  platformVersion: string;
  updatesFeedPath: string;
}

export interface PlatformUrls {
  /** Public base of the REST + auth listener, e.g. http://localhost:8888 */
  platform: string;
  /** Public base of the Houston listener (GraphQL at /v1, DAG server at /<release>/dags/upload). */
  houston: string;
  /** Public base of the blob proxy. */
  blobProxy: string;
  /** `host:port` clients push to, e.g. localhost:5555 */
  registryHost: string;
  /** Registry as the platform itself reaches it. */
  registryInternal: string;
}

export interface FaultKnob {
  /** Requests still to fail. */
  remaining: number;
  status: number;
}

export const registryService = 'astro-local-registry';
export const registryRepositorySuffix = 'airflow';

export type DeploymentStatus = 'CREATING' | 'DEPLOYING' | 'HEALTHY' | 'HIBERNATING' | 'UNHEALTHY' | 'UNKNOWN';

export class Platform {
  urls: PlatformUrls = { platform: '', houston: '', blobProxy: '', registryHost: '', registryInternal: '' };
  blobs: BlobStore | undefined;
  readonly faults: { blob: FaultKnob; dagServer: FaultKnob; rollout: { remaining: number; reason: string } } = {
    blob: { remaining: 0, status: 503 },
    dagServer: { remaining: 0, status: 503 },
    rollout: { remaining: 0, reason: '' },
  };

  constructor(
    readonly seed: Seed,
    readonly state: StateStore,
    readonly tokens: TokenService,
    readonly keys: SigningKeys,
    readonly options: PlatformOptions,
    readonly now: () => number = Date.now,
  ) {}

  isoNow(): string {
    return new Date(this.now()).toISOString();
  }

  blobStore(): BlobStore {
    if (!this.blobs) throw new HttpError(503, 'blob storage is not ready yet');
    return this.blobs;
  }

  // ---- lookups -------------------------------------------------------------------------------------------------

  user(id: string): SeedUser | undefined {
    return this.seed.users.find((u) => u.id === id);
  }

  userByIdentity(identity: string): SeedUser | undefined {
    const wanted = identity.trim().toLowerCase();
    return this.seed.users.find((u) => u.email.toLowerCase() === wanted);
  }

  organization(id: string): SeedOrganization | undefined {
    return this.seed.organizations.find((o) => o.id === id);
  }

  workspace(id: string): SeedWorkspace | undefined {
    return this.seed.workspaces.find((w) => w.id === id);
  }

  deployment(id: string): SeedDeployment | undefined {
    return this.seed.deployments.find((d) => d.id === id);
  }

  organizationOf(deployment: SeedDeployment): string {
    return this.workspace(deployment.workspaceId)!.organizationId;
  }

  softwareDeployment(id: string): SeedSoftwareDeployment | undefined {
    return this.seed.software.deployments.find((d) => d.id === id);
  }

  softwareDeploymentByRelease(releaseName: string): SeedSoftwareDeployment | undefined {
    return this.seed.software.deployments.find((d) => d.releaseName === releaseName);
  }

  // ---- who may see what -----------------------------------------------------------------------------------------

  canAccessOrganization(principal: Principal, organizationId: string): boolean {
    if (principal.kind === 'user') return this.user(principal.userId)?.organizationIds.includes(organizationId) ?? false;
    return principal.organizationId === organizationId;
  }

  canAccessWorkspace(principal: Principal, workspace: SeedWorkspace): boolean {
    if (!this.canAccessOrganization(principal, workspace.organizationId)) return false;
    return principal.kind === 'user' || !principal.workspaceId || principal.workspaceId === workspace.id;
  }

  canAccessDeployment(principal: Principal, deployment: SeedDeployment): boolean {
    const workspace = this.workspace(deployment.workspaceId);
    if (!workspace || !this.canAccessWorkspace(principal, workspace)) return false;
    return principal.kind === 'user' || !principal.deploymentId || principal.deploymentId === deployment.id;
  }

  /** Registry repositories an Astro principal may push to and pull from. */
  astroRepositories(principal: Principal): string[] {
    return this.seed.deployments.filter((d) => this.canAccessDeployment(principal, d)).map((d) => astroRepository(d));
  }

  softwareWorkspaceIds(principal: HoustonPrincipal): string[] {
    if (principal.kind === 'serviceAccount') return [principal.workspaceId];
    return this.user(principal.userId)?.softwareWorkspaceIds ?? [];
  }

  canAccessSoftwareWorkspace(principal: HoustonPrincipal, workspaceId: string): boolean {
    return this.softwareWorkspaceIds(principal).includes(workspaceId);
  }

  softwareRepositories(principal: HoustonPrincipal): string[] {
    const workspaces = new Set(this.softwareWorkspaceIds(principal));
    const repos = this.seed.software.deployments.filter((d) => workspaces.has(d.workspaceId)).map((d) => `${d.releaseName}/${registryRepositorySuffix}`);
    const byo = this.byoRepository();
    if (byo && workspaces.size > 0) repos.push(byo);
    return repos;
  }

  /** The custom-registry repository path, when the configured BYO host points at the local registry. */
  byoRepository(): string | undefined {
    const host = this.softwareAppConfig().byoUpdateRegistryHost;
    const prefix = `${this.urls.registryHost}/`;
    return host.startsWith(prefix) && host.length > prefix.length ? host.slice(prefix.length) : undefined;
  }

  // ---- authentication -------------------------------------------------------------------------------------------

  /** REST authentication: `authorization: Bearer <jwt>` with a user, API token or API key token. */
  async authenticate(header: string | undefined): Promise<Principal> {
    if (!header || header.trim() === '') throw new HttpError(401, 'missing authorization header: send "authorization: Bearer <token>"');
    const match = /^bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new HttpError(401, 'authorization header must be "Bearer <token>"');
    const principal = await this.verifyPlatformToken(match[1]!);
    return principal;
  }

  async verifyPlatformToken(token: string): Promise<Principal> {
    let principal: Principal;
    try {
      principal = await this.tokens.verifyPlatformToken(token);
    } catch (error) {
      if (error instanceof TokenRejected) {
        throw new HttpError(401, error.reason === 'expired' ? 'token is expired; log in again or use a valid API token' : error.message);
      }
      throw error;
    }
    if (principal.kind === 'user' && !this.user(principal.userId)) throw new HttpError(401, 'token names an unknown user');
    if (principal.kind === 'apiToken' && this.state.get().revokedApiTokenIds.includes(principal.tokenId)) {
      throw new HttpError(401, `API token ${principal.tokenId} has been revoked`);
    }
    if (principal.kind !== 'user' && !this.organization(principal.organizationId)) {
      throw new HttpError(401, `token names unknown organization ${principal.organizationId}`);
    }
    return principal;
  }

  /** Houston authentication: the raw token (a Houston JWT or a service account API key), `Bearer` tolerated. */
  async authenticateHouston(header: string | undefined): Promise<HoustonPrincipal | undefined> {
    if (!header) return undefined;
    const token = header.replace(/^bearer\s+/i, '').trim();
    if (!token) return undefined;
    const serviceAccount = this.seed.software.serviceAccounts.find((s) => s.apiKey === token);
    if (serviceAccount) return { kind: 'serviceAccount', serviceAccountId: serviceAccount.id, workspaceId: serviceAccount.workspaceId };
    try {
      const { userId } = await this.tokens.verifyHoustonToken(token);
      return this.user(userId) ? { kind: 'houstonUser', userId } : undefined;
    } catch (error) {
      if (error instanceof TokenRejected) return undefined;
      throw error;
    }
  }

  describePrincipal(principal: Principal | HoustonPrincipal): string {
    switch (principal.kind) {
      case 'user':
      case 'houstonUser':
        return `user:${this.user(principal.userId)?.email ?? principal.userId}`;
      case 'apiToken':
        return `apiToken:${principal.tokenId}`;
      case 'apiKey':
        return `apiKey:${principal.clientId}`;
      case 'serviceAccount':
        return `serviceAccount:${principal.serviceAccountId}`;
    }
  }

  // ---- derived status -------------------------------------------------------------------------------------------

  deploymentStatus(deployment: SeedDeployment): { status: DeploymentStatus; statusReason?: string } {
    const rollout = this.state.get().deployments[deployment.id]?.rollout;
    if (!rollout) return { status: deployment.status };
    if (this.now() < Date.parse(rollout.readyAt)) return { status: 'DEPLOYING', statusReason: `rolling out deploy ${rollout.deployId}` };
    return rollout.outcome === 'HEALTHY' ? { status: 'HEALTHY' } : { status: 'UNHEALTHY', statusReason: rollout.reason };
  }

  /** `BasicSubjectProfile` of a principal as `describePrincipal` recorded it (`user:<email>`, `apiToken:<id>`, …). */
  subjectProfile(recorded: string) {
    const colon = recorded.indexOf(':');
    const kind = recorded.slice(0, colon);
    const id = recorded.slice(colon + 1);
    if (kind === 'user') {
      const user = this.userByIdentity(id) ?? this.user(id);
      return {
        id: user?.id ?? id,
        subjectType: 'USER' as const,
        username: user?.email ?? id,
        fullName: user?.name ?? id,
        avatarUrl: '',
      };
    }
    const name = kind === 'apiToken' ? (this.seed.apiTokens.find((t) => t.id === id)?.name ?? id) : id;
    return { id, subjectType: 'SERVICEKEY' as const, apiTokenName: name };
  }

  private userSubject(userId: string) {
    const user = this.user(userId);
    return this.subjectProfile(`user:${user?.email ?? userId}`);
  }

  // ---- REST views: every field of Astro's v1 schema a client reads, so typed clients find no nil pointer -------

  organizationView(org: SeedOrganization) {
    const creator = this.userSubject(this.seed.defaultLoginUserId);
    return {
      id: org.id,
      name: org.name,
      product: org.product,
      status: org.status,
      supportPlan: org.productPlan,
      paymentMethod: org.paymentMethod,
      billingEmail: `billing@${org.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.example.com`,
      productPlans: [{ astronomerProduct: 'ASTRO', organizationId: org.id, productPlanId: `${org.id}-astro`, productPlanName: org.productPlan }],
      managedDomains: [],
      allowEnhancedSupportAccess: false,
      hasAllowedIpAddressRanges: false,
      hasAiFeaturesDisabled: false,
      isBlockedEnableAiFeatures: false,
      isScimEnabled: false,
      shouldEnforceDedicatedClusters: false,
      createdAt: org.createdAt,
      updatedAt: org.createdAt,
      createdBy: creator,
      updatedBy: creator,
    };
  }

  workspaceView(ws: SeedWorkspace) {
    const creator = this.userSubject(this.seed.defaultLoginUserId);
    return {
      id: ws.id,
      name: ws.name,
      description: ws.description,
      organizationId: ws.organizationId,
      organizationName: this.organization(ws.organizationId)?.name ?? '',
      cicdEnforcedDefault: ws.cicdEnforcedDefault,
      createdAt: ws.createdAt,
      updatedAt: ws.createdAt,
      createdBy: creator,
      updatedBy: creator,
    };
  }

  /** Clusters exist only as the ids Dedicated and Hybrid Deployments name; their details are derived from those. */
  clusterView(clusterId: string) {
    const deployments = this.seed.deployments.filter((d) => d.clusterId === clusterId);
    const first = deployments[0];
    if (!first) return undefined;
    const organizationId = this.organizationOf(first);
    const type = first.type === 'HYBRID' ? 'HYBRID' : 'DEDICATED';
    const createdAt = deployments.map((d) => d.createdAt).sort()[0]!;
    return {
      id: clusterId,
      name: `${first.cloudProvider.toLowerCase()}-${first.region}-${type.toLowerCase()}`,
      type,
      status: 'CREATED',
      cloudProvider: first.cloudProvider,
      region: first.region,
      organizationId,
      dbInstanceType: 'db.t3.medium',
      vpcSubnetRange: '172.20.0.0/19',
      podSubnetRange: '172.21.0.0/19',
      servicePeeringRange: '172.30.0.0/20',
      serviceSubnetRange: '172.22.0.0/22',
      drRegion: '',
      isDrEnabled: false,
      isLimited: false,
      healthStatus: { value: 'HEALTHY' },
      workspaceIds: [...new Set(deployments.map((d) => d.workspaceId))],
      nodePools: [
        {
          id: `${clusterId}-default-pool`,
          clusterId,
          name: 'default',
          cloudProvider: first.cloudProvider,
          isDefault: true,
          maxNodeCount: 20,
          nodeInstanceType: first.cloudProvider === 'GCP' ? 'e2-standard-4' : first.cloudProvider === 'AZURE' ? 'Standard_D4d_v5' : 'm5.xlarge',
          supportedAstroMachines: ['A5', 'A10', 'A20'],
          createdAt,
          updatedAt: createdAt,
        },
      ],
      createdAt,
      updatedAt: createdAt,
    };
  }

  deploymentView(d: SeedDeployment) {
    const recorded = this.state.get().deployments[d.id] ?? {};
    const workspace = this.workspace(d.workspaceId)!;
    const { status, statusReason } = this.deploymentStatus(d);
    const runtimeVersion = recorded.runtimeVersion ?? d.runtimeVersion;
    const hosted = d.type !== 'HYBRID';
    const scheduler = schedulerResources[d.schedulerSize];
    const cluster = d.clusterId ? this.clusterView(d.clusterId) : undefined;
    // The stand-in Airflow UI is served by the platform listener over plain http; the URL says so.
    const airflowBase = `${this.urls.platform}/airflow/${d.namespace}`;
    const creator = this.userSubject(this.seed.defaultLoginUserId);
    const desired = recorded.desiredDagTarballVersion ?? recorded.dagTarballVersion;
    return {
      id: d.id,
      name: d.name,
      description: d.description,
      namespace: d.namespace,
      organizationId: workspace.organizationId,
      workspaceId: d.workspaceId,
      workspaceName: workspace.name,
      runtimeVersion,
      astroRuntimeVersion: runtimeVersion,
      airflowVersion: recorded.airflowVersion ?? d.airflowVersion,
      webServerUrl: airflowBase,
      webServerAirflowApiUrl: `${airflowBase}/api/v2`,
      webServerIngressHostname: new URL(this.urls.platform).hostname,
      apiUrl: `${airflowBase}/api/v2`,
      uiUrl: airflowBase,
      webServerCpu: '0.5',
      webServerMemory: '1Gi',
      webServerReplicas: d.isHighAvailability ? 2 : 1,
      type: d.type,
      executor: d.executor,
      ...(hosted ? { cloudProvider: d.cloudProvider } : {}),
      region: d.region,
      ...(d.clusterId ? { clusterId: d.clusterId, clusterName: cluster?.name ?? d.clusterId } : {}),
      ...(hosted ? { schedulerSize: d.schedulerSize } : { schedulerAu: 5 }),
      schedulerCpu: scheduler.cpu,
      schedulerMemory: scheduler.memory,
      schedulerReplicas: d.isHighAvailability ? 2 : 1,
      defaultTaskPodCpu: '0.25',
      defaultTaskPodMemory: '0.5Gi',
      resourceQuotaCpu: '10',
      resourceQuotaMemory: '20Gi',
      ...(d.type === 'HYBRID' && cluster ? { taskPodNodePoolId: cluster.nodePools[0]!.id } : {}),
      isDagDeployEnabled: d.isDagDeployEnabled,
      isCicdEnforced: d.isCicdEnforced,
      isHighAvailability: d.isHighAvailability,
      isDevelopmentMode: d.isDevelopmentMode,
      status,
      ...(statusReason ? { statusReason } : {}),
      imageRepository: `${this.urls.registryHost}/${astroRepository(d)}`,
      imageTag: recorded.imageTag ?? '',
      imageVersion: recorded.imageTag ?? '',
      ...(recorded.dagTarballVersion ? { dagTarballVersion: recorded.dagTarballVersion } : {}),
      ...(desired ? { desiredDagTarballVersion: desired } : {}),
      workerQueues: [
        {
          id: `${d.id}-default-queue`,
          name: 'default',
          isDefault: true,
          minWorkerCount: 0,
          maxWorkerCount: 10,
          workerConcurrency: 5,
          podCpu: '1',
          podMemory: '2Gi',
          podEphemeralStorage: '10Gi',
          ...(d.type === 'HYBRID' && cluster ? { nodePoolId: cluster.nodePools[0]!.id } : { astroMachine: 'A5' }),
        },
      ],
      environmentVariables: [],
      contactEmails: [],
      externalIPs: [],
      createdAt: d.createdAt,
      updatedAt: recorded.updatedAt ?? d.createdAt,
      createdBy: creator,
      updatedBy: recorded.updatedBy ? this.subjectProfile(recorded.updatedBy) : creator,
    };
  }

  /** Astro's v1 `Deploy`. There is no image digest in it: a client reads that from the registry (manifest of imageTag). */
  deployView(deploy: DeployRecord, includeUploadUrl?: string) {
    const subject = this.subjectProfile(deploy.createdBy);
    return {
      id: deploy.id,
      deploymentId: deploy.deploymentId,
      type: deploy.type,
      status: deploy.status,
      description: deploy.description,
      ...(deploy.git ? { git: deploy.git } : {}),
      ...(deploy.dagBundleName ? { dagBundleName: deploy.dagBundleName } : {}),
      isDagDeployEnabled: deploy.isDagDeployEnabled,
      imageRepository: deploy.imageRepository,
      imageTag: deploy.imageTag,
      ...(includeUploadUrl ? { dagsUploadUrl: includeUploadUrl } : {}),
      ...(deploy.dagTarballVersion !== undefined ? { dagTarballVersion: deploy.dagTarballVersion } : {}),
      ...((deploy.imageRuntimeVersion ?? deploy.runtimeVersion) ? { astroRuntimeVersion: deploy.imageRuntimeVersion ?? deploy.runtimeVersion } : {}),
      ...((deploy.imageAirflowVersion ?? deploy.airflowVersion) ? { airflowVersion: deploy.imageAirflowVersion ?? deploy.airflowVersion } : {}),
      createdAt: deploy.createdAt,
      updatedAt: deploy.updatedAt,
      createdBySubject: subject,
      updatedBySubject: deploy.updatedBy ? this.subjectProfile(deploy.updatedBy) : subject,
    };
  }

  // ---- Houston (Software) ---------------------------------------------------------------------------------------

  softwareAppConfig(): { version: string; featureFlags: Record<string, boolean>; byoUpdateRegistryHost: string } {
    const override = this.state.get().software.appConfig;
    const host = override.byoUpdateRegistryHost ?? this.seed.software.byoUpdateRegistryHost;
    return {
      version: override.version ?? this.options.platformVersion,
      featureFlags: { ...this.seed.software.featureFlags, ...override.featureFlags },
      byoUpdateRegistryHost: host.replaceAll('{{registryHost}}', this.urls.registryHost),
    };
  }

  softwareDeploymentUrls(d: SeedSoftwareDeployment): { type: string; url: string }[] {
    const urls = [{ type: 'airflow', url: `${this.urls.houston}/${d.releaseName}/airflow` }];
    if (d.dagDeploymentType === 'dag_deploy') urls.push({ type: 'dagserver', url: `${this.urls.houston}/${d.releaseName}/dags/upload` });
    urls.push({ type: 'registry', url: this.urls.registryHost });
    return urls;
  }

  softwareDeployInfo(d: SeedSoftwareDeployment): { current: string; nextCli: string } {
    const current = this.state.get().software.deployments[d.id]?.currentTag ?? d.currentTag;
    const match = /^deploy-(\d+)$/.exec(current);
    return { current, nextCli: `deploy-${match ? Number(match[1]) + 1 : 1}` };
  }
}

const schedulerResources: Record<SeedDeployment['schedulerSize'], { cpu: string; memory: string }> = {
  SMALL: { cpu: '1', memory: '2Gi' },
  MEDIUM: { cpu: '2', memory: '4Gi' },
  LARGE: { cpu: '4', memory: '8Gi' },
  EXTRA_LARGE: { cpu: '8', memory: '16Gi' },
};

export function astroRepository(d: SeedDeployment): string {
  return `${d.namespace}/${registryRepositorySuffix}`;
}
