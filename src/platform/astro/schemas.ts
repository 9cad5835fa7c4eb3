/** Shapes of the Astro REST v1 answers astro reads (extra fields are kept, missing optional ones tolerated). */
import * as z from 'zod';

// Built once and shared by every field they type (a schema is immutable): fewer instances to build on every API
// command (with the config schema's, a DAG-only deploy built 253 zod instances, and 140 since).
const text = z.string();
const optionalText = text.optional();
const textOrEmpty = optionalText.default('');
const optionalFlag = z.boolean().optional();
const flagOrFalse = optionalFlag.default(false);
const count = z.number().int().optional();
const total = z.number().int().nonnegative().optional();

export const deploymentStatusSchema = z.enum(['CREATING', 'DEPLOYING', 'HEALTHY', 'HIBERNATING', 'UNHEALTHY', 'UNKNOWN']);
export type DeploymentStatus = z.infer<typeof deploymentStatusSchema>;

export const deploymentSchema = z.looseObject({
  id: text,
  name: text,
  namespace: textOrEmpty,
  runtimeVersion: textOrEmpty,
  organizationId: text,
  workspaceId: text,
  webServerUrl: textOrEmpty,
  type: optionalText,
  isDagDeployEnabled: flagOrFalse,
  isCicdEnforced: flagOrFalse,
  status: text,
  statusReason: optionalText,
  createdAt: optionalText,
  imageTag: optionalText,
  dagTarballVersion: optionalText,
  desiredDagTarballVersion: optionalText,
  remoteExecution: z.looseObject({ enabled: optionalFlag }).nullable().optional(),
});
export type Deployment = z.infer<typeof deploymentSchema>;

export const deploymentsPageSchema = z.looseObject({
  deployments: z.array(deploymentSchema),
  totalCount: total,
  limit: count,
  offset: count,
});

export const organizationSchema = z.looseObject({
  id: text,
  name: text,
  product: optionalText,
});
export type Organization = z.infer<typeof organizationSchema>;

export const organizationsPageSchema = z.looseObject({
  organizations: z.array(organizationSchema),
  totalCount: total,
});

export const workspaceSchema = z.looseObject({ id: text, name: text, organizationId: optionalText });
export type Workspace = z.infer<typeof workspaceSchema>;

export const workspacesPageSchema = z.looseObject({
  workspaces: z.array(workspaceSchema),
  totalCount: total,
});

export const selfUserSchema = z.looseObject({ id: text, username: optionalText, fullName: optionalText });

export const deploymentOptionsSchema = z.looseObject({
  runtimeReleases: z.array(z.looseObject({ version: text, airflowVersion: optionalText, channel: optionalText })).default([]),
});
export type DeploymentOptions = z.infer<typeof deploymentOptionsSchema>;

export const deployTypeSchema = z.enum(['IMAGE_AND_DAG', 'DAG_ONLY', 'IMAGE_ONLY']);
export type DeployType = z.infer<typeof deployTypeSchema>;

export const deploySchema = z.looseObject({
  id: text,
  deploymentId: optionalText,
  type: optionalText,
  status: optionalText,
  imageRepository: textOrEmpty,
  imageTag: textOrEmpty,
  dagsUploadUrl: optionalText,
  dagTarballVersion: optionalText,
  isDagDeployEnabled: optionalFlag,
  description: optionalText,
  git: z.looseObject({ commitSha: optionalText }).optional(),
  createdAt: optionalText,
});
export type Deploy = z.infer<typeof deploySchema>;

export const deploysPageSchema = z.looseObject({
  deploys: z.array(deploySchema),
  totalCount: z.number().optional(),
});

export interface GitMetadata {
  provider: 'GITHUB' | 'GENERIC';
  commitSha: string;
  branch?: string;
  authorName?: string;
  path?: string;
  account?: string;
  repo?: string;
  commitUrl?: string;
  remoteUrl?: string;
}

export interface CreateDeployRequest {
  type: DeployType;
  description: string;
  git?: GitMetadata;
  /** A named DAG bundle of the Deployment (Airflow 3): created through the v1alpha1 API, the only one that takes it. */
  dagBundleName?: string;
}

export const authConfigSchema = z.looseObject({
  clientId: text,
  audience: text,
  domainUrl: z.string().refine((u) => u.endsWith('/'), 'domainUrl must end with /'),
});
export type AuthConfig = z.infer<typeof authConfigSchema>;
