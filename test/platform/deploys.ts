/**
 * Deploy lifecycle: CreateDeploy hands out where to push (imageRepository + a fresh imageTag) and where to upload
 * (a write-only SAS URL); FinalizeDeploy checks what actually arrived before the Deployment rolls out.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { dagBundleBlobName } from './blob.js';
import { airflowMajorOfRuntime, checkDagBundle } from './bundle-check.js';
import { ImageRefused, inspectPushedImage } from './image-check.js';
import { astroRepository, registryService, type Platform } from './platform.js';
import type { SeedDeployment } from './seed.js';
import { HttpError, type FieldError } from './server/http.js';
import type { DeployRecord, DeployType } from './state.js';
import type { Principal } from './tokens.js';

const gitRequest = z
  .object({
    provider: z.enum(['GITHUB', 'GENERIC']),
    commitSha: z.string().min(1),
    branch: z.string().optional(),
    authorName: z.string().optional(),
    authorUsername: z.string().optional(),
    authorUrl: z.string().optional(),
    beforeCommitSha: z.string().optional(),
    path: z.string().optional(),
    account: z.string().optional(),
    repo: z.string().optional(),
    commitUrl: z.string().optional(),
    remoteUrl: z.string().optional(),
  })
  .strict();

export const createDeployRequest = z.object({
  type: z.enum(['IMAGE_AND_DAG', 'DAG_ONLY', 'IMAGE_ONLY', 'BUNDLE']),
  description: z.string().max(1000).optional(),
  git: gitRequest.optional(),
  bundleMountPath: z.string().optional(),
  bundleType: z.string().optional(),
});

/** v1alpha1 (hidden `--dag-bundle-name`): `IMAGE` / `DAG`, expanded by the server. */
export const createDeployRequestV1alpha1 = z.object({
  type: z.enum(['IMAGE', 'DAG', 'BUNDLE']),
  description: z.string().max(1000).optional(),
  dagBundleName: z.string().optional(),
  imageTag: z.string().optional(),
  git: gitRequest.optional(),
  bundleMountPath: z.string().optional(),
  bundleType: z.string().optional(),
});

export const finalizeDeployRequest = z.object({
  dagTarballVersion: z.string().optional(),
  bundleTarballVersion: z.string().optional(),
});

export const updateDeployRequest = z.object({ description: z.string().max(1000).optional() });

/** zod issues → the `fieldErrors` of Astro's 400 answers. */
export function validationError(error: z.ZodError, what: string): HttpError {
  const fieldErrors: FieldError[] = error.issues.map((issue) => ({
    code: issue.code,
    field: issue.path.join('.') || '(body)',
    message: issue.message,
  }));
  const summary = fieldErrors.map((f) => `${f.field}: ${f.message}`).join('; ');
  return new HttpError(400, `invalid ${what}: ${summary}`, { fieldErrors });
}

export function parseBody<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  if (value === undefined) value = {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, `invalid ${what}: the body must be a JSON object`);
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(result.error, what);
  return result.data;
}

function newDeployId(): string {
  return `cldpl${randomBytes(15).toString('hex').slice(0, 20)}`;
}

function newImageTag(now: Date): string {
  const stamp = now.toISOString().slice(0, 19).replaceAll(':', '-');
  return `deploy-${stamp}-${randomBytes(3).toString('hex')}`;
}

function requireCicdAllowed(principal: Principal, deployment: SeedDeployment): void {
  if (deployment.isCicdEnforced && principal.kind === 'user') {
    throw new HttpError(403, `cannot deploy since ci/cd enforcement is enabled for the deployment ${deployment.name}. Please use API Tokens instead`);
  }
}

export async function createDeploy(
  platform: Platform,
  principal: Principal,
  deployment: SeedDeployment,
  request: { type: DeployType | 'BUNDLE'; description?: string; git?: DeployRecord['git']; dagBundleName?: string },
): Promise<{ deploy: DeployRecord; dagsUploadUrl?: string }> {
  requireCicdAllowed(principal, deployment);
  if (request.type === 'BUNDLE') {
    throw new HttpError(400, 'BUNDLE deploys are not supported by the local platform; use IMAGE_AND_DAG, DAG_ONLY or IMAGE_ONLY');
  }
  if (request.type !== 'IMAGE_AND_DAG' && !deployment.isDagDeployEnabled) {
    throw new HttpError(
      400,
      `dag deploy is not enabled for deployment ${deployment.id}: ${request.type} deploys need DAG deploys; enable them or deploy IMAGE_AND_DAG`,
    );
  }
  const now = new Date(platform.now());
  let dagsUploadUrl: string | undefined;
  let dagsUploadUrlExpiresAt: string | undefined;
  if (deployment.isDagDeployEnabled && request.type !== 'IMAGE_ONLY') {
    const expiresAt = new Date(now.getTime() + platform.options.sasTtlSeconds * 1000);
    const blobs = platform.blobStore();
    await blobs.ensureContainer(deployment.id);
    dagsUploadUrl = blobs.uploadUrl(deployment.id, dagBundleBlobName, expiresAt, now);
    dagsUploadUrlExpiresAt = expiresAt.toISOString();
  }
  const deploy: DeployRecord = {
    id: newDeployId(),
    deploymentId: deployment.id,
    organizationId: platform.organizationOf(deployment),
    type: request.type,
    status: 'INITIALIZED',
    description: request.description ?? '',
    ...(request.git ? { git: request.git } : {}),
    ...(request.dagBundleName ? { dagBundleName: request.dagBundleName } : {}),
    imageRepository: `${platform.urls.registryHost}/${astroRepository(deployment)}`,
    imageTag: newImageTag(now),
    isDagDeployEnabled: deployment.isDagDeployEnabled,
    ...(dagsUploadUrlExpiresAt ? { dagsUploadUrlExpiresAt } : {}),
    runtimeVersion: platform.state.get().deployments[deployment.id]?.runtimeVersion ?? deployment.runtimeVersion,
    airflowVersion: platform.state.get().deployments[deployment.id]?.airflowVersion ?? deployment.airflowVersion,
    createdBy: platform.describePrincipal(principal),
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  platform.state.update((s) => {
    s.deploys.push(deploy);
  });
  return { deploy, dagsUploadUrl };
}

const finalizing = new Set<string>();

export async function finalizeDeploy(
  platform: Platform,
  principal: Principal,
  deployment: SeedDeployment,
  deploy: DeployRecord,
  request: { dagTarballVersion?: string; bundleTarballVersion?: string },
): Promise<DeployRecord> {
  // Finalize awaits the registry and blob storage; a second finalize of the same deploy meanwhile must not race it.
  if (finalizing.has(deploy.id)) throw new HttpError(409, `deploy ${deploy.id} is being finalized by another request`);
  finalizing.add(deploy.id);
  try {
    return await finalizeOnce(platform, principal, deployment, deploy, request);
  } finally {
    finalizing.delete(deploy.id);
  }
}

async function finalizeOnce(
  platform: Platform,
  principal: Principal,
  deployment: SeedDeployment,
  deploy: DeployRecord,
  request: { dagTarballVersion?: string; bundleTarballVersion?: string },
): Promise<DeployRecord> {
  requireCicdAllowed(principal, deployment);
  if (deploy.status !== 'INITIALIZED') {
    throw new HttpError(400, `deploy ${deploy.id} was already finalized (status ${deploy.status}); create a new deploy`);
  }
  const refuse = (message: string): never => {
    platform.state.update((s) => {
      const record = s.deploys.find((d) => d.id === deploy.id);
      if (record) record.lastFinalizeError = message;
    });
    throw new HttpError(400, message);
  };

  const version = request.dagTarballVersion ?? '';
  if (request.bundleTarballVersion) refuse('bundleTarballVersion is only valid for BUNDLE deploys, which the local platform does not support');
  if (version !== '' && !deployment.isDagDeployEnabled)
    refuse(`dag deploy is not enabled for deployment ${deployment.id}, so finalize takes no dagTarballVersion`);
  if (version !== '' && deploy.type === 'IMAGE_ONLY') refuse(`deploy ${deploy.id} is IMAGE_ONLY and carries no DAG bundle; send an empty dagTarballVersion`);
  if (version === '' && deploy.type === 'DAG_ONLY') {
    refuse(`deploy ${deploy.id} is DAG_ONLY: finalize needs the dagTarballVersion (x-ms-version-id) of the uploaded bundle`);
  }

  // Image: what is really in the registry under the tag this deploy handed out.
  let image: { digest: string; platform: string; runtimeVersion?: string; airflowVersion?: string } | undefined;
  if (deploy.type !== 'DAG_ONLY') {
    const repository = deploy.imageRepository.slice(deploy.imageRepository.indexOf('/') + 1);
    try {
      const facts = await inspectPushedImage(
        {
          url: platform.urls.registryInternal,
          pullToken: (repo) =>
            platform.tokens.registryToken('astro-local-platform', registryService, [{ type: 'repository', name: repo, actions: ['pull'] }], 60),
        },
        repository,
        deploy.imageTag,
      );
      image = {
        digest: facts.digest,
        platform: facts.platform,
        runtimeVersion: facts.labels['io.astronomer.docker.runtime.version'],
        airflowVersion: facts.labels['io.astronomer.docker.airflow.version'],
      };
    } catch (error) {
      if (error instanceof ImageRefused) refuse(error.message);
      throw error;
    }
  }

  // DAG bundle: the snapshot named by the version id the upload returned.
  let bundle: { ok: boolean; reason?: string; files: string[] } | undefined;
  if (version !== '') {
    const known = platform.state.get().blobVersions[`${deployment.id}/${dagBundleBlobName}`] ?? [];
    if (!known.some((v) => v.versionId === version)) {
      refuse(`dagTarballVersion ${version} is not a version of deployment ${deployment.id}'s DAG bundle; upload to the dagsUploadUrl first`);
    }
    const data = await platform.blobStore().readSnapshot(deployment.id, dagBundleBlobName, version, 1024 * 1024 * 1024);
    if (!data) refuse(`dagTarballVersion ${version} could not be read back from blob storage`);
    // The Runtime this deploy rolls out decides how the bundle is read: the pushed image's, else the running one.
    const runtimeVersion = image?.runtimeVersion ?? platform.state.get().deployments[deployment.id]?.runtimeVersion ?? deployment.runtimeVersion;
    bundle = await checkDagBundle(data!, { airflowMajor: airflowMajorOfRuntime(runtimeVersion) });
  }

  const now = new Date(platform.now());
  let rolloutFailure: string | undefined;
  if (platform.faults.rollout.remaining > 0) {
    platform.faults.rollout.remaining--;
    rolloutFailure = platform.faults.rollout.reason;
  }
  const outcome = (bundle && !bundle.ok) || rolloutFailure ? 'UNHEALTHY' : 'HEALTHY';
  return platform.state.update((s) => {
    const record = s.deploys.find((d) => d.id === deploy.id)!;
    // A rollout that fails after a good deploy leaves the deploy DEPLOYED; only a rejected bundle fails the deploy.
    record.status = bundle && !bundle.ok ? 'FAILED' : 'DEPLOYED';
    record.finalizedAt = now.toISOString();
    record.updatedAt = now.toISOString();
    delete record.lastFinalizeError;
    if (image) {
      record.imageDigest = image.digest;
      record.imagePlatform = image.platform;
      if (image.runtimeVersion) record.imageRuntimeVersion = record.runtimeVersion = image.runtimeVersion;
      if (image.airflowVersion) record.imageAirflowVersion = record.airflowVersion = image.airflowVersion;
    }
    record.updatedBy = platform.describePrincipal(principal);
    if (version !== '' || deployment.isDagDeployEnabled) record.dagTarballVersion = version;
    if (bundle) {
      record.dagBundleFiles = bundle.files.slice(0, 500);
      if (!bundle.ok) record.failureReason = bundle.reason;
    }

    const current = (s.deployments[deployment.id] ??= {});
    if (image) {
      current.imageRepository = deploy.imageRepository;
      current.imageTag = deploy.imageTag;
      current.imageDigest = image.digest;
      if (image.runtimeVersion) current.runtimeVersion = image.runtimeVersion;
      if (image.airflowVersion) current.airflowVersion = image.airflowVersion;
    }
    if (bundle?.ok) current.dagTarballVersion = version;
    if (version !== '') current.desiredDagTarballVersion = version;
    current.updatedAt = now.toISOString();
    current.updatedBy = record.createdBy;
    current.rollout = {
      deployId: deploy.id,
      finalizedAt: now.toISOString(),
      readyAt: new Date(now.getTime() + platform.options.healthDelayMs).toISOString(),
      outcome,
      ...(bundle && !bundle.ok ? { reason: `DAG bundle ${version} was rejected: ${bundle.reason}` } : rolloutFailure ? { reason: rolloutFailure } : {}),
    };
    return record;
  });
}
