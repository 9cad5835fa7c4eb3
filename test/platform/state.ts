/**
 * What the platform has learned since it started from the seed: deploys, what each Deployment runs, DAG uploads,
 * issued refresh tokens. Kept in `<state>/state.json`, rewritten atomically (temp file + rename) after every change so
 * a crash never leaves half a file, and read back on start so state survives a restart.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';

const deployType = z.enum(['IMAGE_AND_DAG', 'DAG_ONLY', 'IMAGE_ONLY']);
export type DeployType = z.infer<typeof deployType>;

const gitSchema = z
  .object({
    provider: z.enum(['GITHUB', 'GENERIC']),
    commitSha: z.string(),
    branch: z.string().optional(),
    authorName: z.string().optional(),
    authorUsername: z.string().optional(),
    authorUrl: z.string().optional(),
    path: z.string().optional(),
    account: z.string().optional(),
    repo: z.string().optional(),
    commitUrl: z.string().optional(),
    remoteUrl: z.string().optional(),
    beforeCommitSha: z.string().optional(),
  })
  .loose();
export type DeployGit = z.infer<typeof gitSchema>;

const deploySchema = z.object({
  id: z.string(),
  deploymentId: z.string(),
  organizationId: z.string(),
  type: deployType,
  status: z.enum(['INITIALIZED', 'DEPLOYED', 'FAILED']),
  description: z.string(),
  git: gitSchema.optional(),
  dagBundleName: z.string().optional(),
  imageRepository: z.string(),
  imageTag: z.string(),
  isDagDeployEnabled: z.boolean(),
  dagsUploadUrlExpiresAt: z.string().optional(),
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finalizedAt: z.string().optional(),
  imageDigest: z.string().optional(),
  imagePlatform: z.string().optional(),
  imageRuntimeVersion: z.string().optional(),
  imageAirflowVersion: z.string().optional(),
  /** What the Deployment ran when the deploy was created, until a pushed image says otherwise. */
  runtimeVersion: z.string().optional(),
  airflowVersion: z.string().optional(),
  /** Who last changed the deploy (finalize or update), as `describePrincipal` writes it. */
  updatedBy: z.string().optional(),
  dagTarballVersion: z.string().optional(),
  dagBundleFiles: z.array(z.string()).optional(),
  failureReason: z.string().optional(),
  /** Last refused finalize, kept so tests can see why a deploy stayed INITIALIZED. */
  lastFinalizeError: z.string().optional(),
});
export type DeployRecord = z.infer<typeof deploySchema>;

const rolloutSchema = z.object({
  deployId: z.string(),
  finalizedAt: z.string(),
  /** Until this instant the Deployment reports DEPLOYING; status is derived from it, so it survives restarts. */
  readyAt: z.string(),
  outcome: z.enum(['HEALTHY', 'UNHEALTHY']),
  reason: z.string().optional(),
});

const deploymentStateSchema = z.object({
  runtimeVersion: z.string().optional(),
  airflowVersion: z.string().optional(),
  imageRepository: z.string().optional(),
  imageTag: z.string().optional(),
  imageDigest: z.string().optional(),
  dagTarballVersion: z.string().optional(),
  /** The version the latest finalize asked for, good or bad (the active one is dagTarballVersion). */
  desiredDagTarballVersion: z.string().optional(),
  rollout: rolloutSchema.optional(),
  updatedAt: z.string().optional(),
  /** Who made the deploy that last changed the Deployment (as `describePrincipal` writes it). */
  updatedBy: z.string().optional(),
});
export type DeploymentState = z.infer<typeof deploymentStateSchema>;

const blobVersionSchema = z.object({ versionId: z.string(), createdAt: z.string(), operation: z.string() });
export type BlobVersion = z.infer<typeof blobVersionSchema>;

const softwareDeploymentStateSchema = z.object({
  currentTag: z.string().optional(),
  image: z.string().optional(),
  imageDigest: z.string().optional(),
  runtimeVersion: z.string().optional(),
  airflowVersion: z.string().optional(),
  imageUpdatedAt: z.string().optional(),
  imageUpdatedBy: z.string().optional(),
  updatedAt: z.string().optional(),
});
export type SoftwareDeploymentState = z.infer<typeof softwareDeploymentStateSchema>;

const dagUploadSchema = z.object({
  id: z.string(),
  releaseName: z.string(),
  deploymentId: z.string(),
  description: z.string(),
  filename: z.string(),
  sizeBytes: z.number(),
  sha256: z.string(),
  files: z.array(z.string()),
  uploadedBy: z.string(),
  uploadedAt: z.string(),
});
export type DagUploadRecord = z.infer<typeof dagUploadSchema>;

const registryPushSchema = z.object({
  repository: z.string(),
  tag: z.string().optional(),
  digest: z.string(),
  mediaType: z.string().optional(),
  actor: z.string().optional(),
  at: z.string(),
});
export type RegistryPush = z.infer<typeof registryPushSchema>;

const stateSchema = z.object({
  version: z.literal(1),
  deploys: z.array(deploySchema).default([]),
  deployments: z.record(z.string(), deploymentStateSchema).default({}),
  blobVersions: z.record(z.string(), z.array(blobVersionSchema)).default({}),
  software: z
    .object({
      deployments: z.record(z.string(), softwareDeploymentStateSchema).default({}),
      dagUploads: z.array(dagUploadSchema).default([]),
      appConfig: z
        .object({
          version: z.string().optional(),
          featureFlags: z.record(z.string(), z.boolean()).optional(),
          byoUpdateRegistryHost: z.string().optional(),
        })
        .default({}),
    })
    .default({ deployments: {}, dagUploads: [], appConfig: {} }),
  registryPushes: z.array(registryPushSchema).default([]),
  refreshTokens: z.record(z.string(), z.object({ userId: z.string(), revoked: z.boolean(), issuedAt: z.string() })).default({}),
  revokedApiTokenIds: z.array(z.string()).default([]),
  mintedApiTokens: z
    .array(
      z.object({ id: z.string(), organizationId: z.string(), workspaceId: z.string().optional(), deploymentId: z.string().optional(), expiresAt: z.string() }),
    )
    .default([]),
});
export type PlatformState = z.infer<typeof stateSchema>;

function emptyState(): PlatformState {
  return stateSchema.parse({ version: 1 });
}

export class StateStore {
  private data: PlatformState;

  constructor(private readonly path: string) {
    this.data = existsSync(path) ? StateStore.read(path) : emptyState();
  }

  private static read(path: string): PlatformState {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new Error(`state file ${path} cannot be read (${(error as Error).message}); delete it or use another state directory`);
    }
    const parsed = stateSchema.safeParse(json);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw new Error(
        `state file ${path} does not match the expected shape (${first?.path.join('.')}: ${first?.message}); delete it or use another state directory`,
      );
    }
    return parsed.data;
  }

  get(): Readonly<PlatformState> {
    return this.data;
  }

  /** Applies a change and persists it before returning, so an acknowledged request is never lost. */
  update<T>(change: (state: PlatformState) => T): T {
    const result = change(this.data);
    this.persist();
    return result;
  }

  private persist(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.data, null, 2)}\n`);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}

/** Writes any JSON document atomically (used for endpoints.json and tokens.json too). */
export function writeJsonAtomic(path: string, value: unknown, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode });
  renameSync(tmp, path);
}
