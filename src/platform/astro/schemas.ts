/** Shapes of the Astro REST v1 answers astro reads (extra fields are kept, missing optional ones tolerated). */
import * as z from 'zod';

export const deploymentStatusSchema = z.enum(['CREATING', 'DEPLOYING', 'HEALTHY', 'HIBERNATING', 'UNHEALTHY', 'UNKNOWN']);
export type DeploymentStatus = z.infer<typeof deploymentStatusSchema>;

export const deploymentSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  namespace: z.string().optional().default(''),
  runtimeVersion: z.string().optional().default(''),
  organizationId: z.string(),
  workspaceId: z.string(),
  webServerUrl: z.string().optional().default(''),
  type: z.string().optional(),
  isDagDeployEnabled: z.boolean().optional().default(false),
  isCicdEnforced: z.boolean().optional().default(false),
  status: z.string(),
  statusReason: z.string().optional(),
  createdAt: z.string().optional(),
  imageTag: z.string().optional(),
  dagTarballVersion: z.string().optional(),
  desiredDagTarballVersion: z.string().optional(),
  remoteExecution: z.looseObject({ enabled: z.boolean().optional() }).nullable().optional(),
});
export type Deployment = z.infer<typeof deploymentSchema>;

export const deploymentsPageSchema = z.looseObject({
  deployments: z.array(deploymentSchema),
  totalCount: z.number().int().nonnegative().optional(),
  limit: z.number().int().optional(),
  offset: z.number().int().optional(),
});

export const organizationSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  product: z.string().optional(),
});
export type Organization = z.infer<typeof organizationSchema>;

export const organizationsPageSchema = z.looseObject({
  organizations: z.array(organizationSchema),
  totalCount: z.number().int().nonnegative().optional(),
});

export const workspaceSchema = z.looseObject({ id: z.string(), name: z.string(), organizationId: z.string().optional() });
export type Workspace = z.infer<typeof workspaceSchema>;

export const workspacesPageSchema = z.looseObject({
  workspaces: z.array(workspaceSchema),
  totalCount: z.number().int().nonnegative().optional(),
});

export const selfUserSchema = z.looseObject({ id: z.string(), username: z.string().optional(), fullName: z.string().optional() });

export const deploymentOptionsSchema = z.looseObject({
  runtimeReleases: z.array(z.looseObject({ version: z.string(), airflowVersion: z.string().optional(), channel: z.string().optional() })).default([]),
});
export type DeploymentOptions = z.infer<typeof deploymentOptionsSchema>;

export const deployTypeSchema = z.enum(['IMAGE_AND_DAG', 'DAG_ONLY', 'IMAGE_ONLY']);
export type DeployType = z.infer<typeof deployTypeSchema>;

export const deploySchema = z.looseObject({
  id: z.string(),
  deploymentId: z.string().optional(),
  type: z.string().optional(),
  status: z.string().optional(),
  imageRepository: z.string().optional().default(''),
  imageTag: z.string().optional().default(''),
  dagsUploadUrl: z.string().optional(),
  dagTarballVersion: z.string().optional(),
  isDagDeployEnabled: z.boolean().optional(),
  description: z.string().optional(),
  git: z.looseObject({ commitSha: z.string().optional() }).optional(),
  createdAt: z.string().optional(),
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
  clientId: z.string(),
  audience: z.string(),
  domainUrl: z.string().refine((u) => u.endsWith('/'), 'domainUrl must end with /'),
});
export type AuthConfig = z.infer<typeof authConfigSchema>;
