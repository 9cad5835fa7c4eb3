/**
 * The Houston operations `astro deploy` needs, each sent in the shape the platform's version understands and each
 * answer checked with a schema. The deploy service sees only the `SoftwareDeployApi` port.
 */
import * as z from 'zod';
import type { HoustonClient } from './houston.js';
import {
  APP_CONFIG_QUERIES,
  APP_CONFIG_VARIABLES,
  DEPLOYMENT_CONFIG_QUERIES,
  DEPLOYMENT_QUERIES,
  GET_WORKSPACE_QUERY,
  IMAGE_UPDATE_MUTATIONS,
  PLATFORM_VERSION_QUERY,
  RUNTIME_RELEASES_QUERY,
  WORKSPACE_DEPLOYMENTS_QUERIES,
} from './documents.js';
import { pickForVersion, requirePlatformVersion } from './versions.js';

const text = z
  .string()
  .nullish()
  .transform((v) => v ?? undefined);

const workspaceSchema = z.looseObject({ id: z.string(), label: text, description: text });
export type SoftwareWorkspace = z.infer<typeof workspaceSchema>;

const deploymentSummarySchema = z.looseObject({
  id: z.string(),
  label: text,
  releaseName: z.string(),
  workspace: z.looseObject({ id: z.string() }).nullish(),
  deployInfo: z.looseObject({ nextCli: text, current: text }).nullish(),
  airflowVersion: text,
  runtimeVersion: text,
  clusterId: text,
});
export type SoftwareDeploymentSummary = z.infer<typeof deploymentSummarySchema>;

const deploymentUrl = z.looseObject({ type: text, url: text });

export type DagDeploymentType = 'image' | 'dag_deploy' | 'volume' | 'git_sync';

const deploymentDetailsSchema = z.looseObject({
  id: z.string().nullish(),
  releaseName: text,
  airflowVersion: text,
  desiredAirflowVersion: text,
  runtimeVersion: text,
  desiredRuntimeVersion: text,
  runtimeAirflowVersion: text,
  urls: z.array(deploymentUrl).nullish(),
  // Older platforms have no dagDeployment at all: every Deployment there receives code as an image.
  dagDeployment: z.looseObject({ type: text }).nullish(),
  clusterId: text,
});
export type SoftwareDeploymentDetails = z.infer<typeof deploymentDetailsSchema>;

export interface SoftwareFeatureFlags {
  dagOnlyDeployment: boolean;
  byoUpdateRegistryEnabled: boolean;
  nfsMountDagDeployment: boolean;
  gitSyncDagDeployment: boolean;
  hardDeleteDeployment: boolean;
  manualNamespaceNames: boolean;
  triggererEnabled: boolean;
  namespaceFreeFormEntry: boolean;
  astroRuntimeEnabled: boolean;
}

export interface SoftwareAppConfig {
  version?: string;
  baseDomain?: string;
  byoUpdateRegistryHost?: string;
  flags: SoftwareFeatureFlags;
}

const appConfigSchema = z.looseObject({
  version: text,
  baseDomain: text,
  byoUpdateRegistryHost: text,
  nfsMountDagDeployment: z.boolean().nullish(),
  manualNamespaceNames: z.boolean().nullish(),
  hardDeleteDeployment: z.boolean().nullish(),
  triggererEnabled: z.boolean().nullish(),
  namespaceFreeFormEntry: z.boolean().nullish(),
  featureFlags: z.record(z.string(), z.unknown()).nullish(),
});

const deploymentConfigSchema = z.looseObject({
  airflowImages: z.array(z.looseObject({ version: text, tag: text })).nullish(),
});
export type SoftwareDeploymentConfig = z.infer<typeof deploymentConfigSchema>;

const runtimeReleaseSchema = z.looseObject({ version: z.string(), airflowVersion: text });

export interface ImageUpdate {
  releaseName: string;
  image: string;
  runtimeVersion?: string;
  airflowVersion?: string;
}

export interface ImageUpdateAnswer {
  releaseName?: string;
  runtimeVersion?: string;
  airflowVersion?: string;
}

/** Houston as `astro deploy` uses it. `version` is what `platformVersion()` returned. */
export interface SoftwareDeployApi {
  platformVersion(signal?: AbortSignal): Promise<string>;
  getWorkspace(id: string, signal?: AbortSignal): Promise<SoftwareWorkspace | undefined>;
  listDeployments(workspaceId: string, version: string, signal?: AbortSignal): Promise<SoftwareDeploymentSummary[]>;
  /** undefined when Houston knows no Deployment with that id. */
  getDeployment(id: string, version: string, signal?: AbortSignal): Promise<SoftwareDeploymentDetails | undefined>;
  appConfig(scope: { clusterId?: string; workspaceId?: string; deploymentId?: string }, version: string, signal?: AbortSignal): Promise<SoftwareAppConfig>;
  deploymentConfig(version: string, signal?: AbortSignal): Promise<SoftwareDeploymentConfig>;
  runtimeReleases(clusterId: string | undefined, signal?: AbortSignal): Promise<{ version: string; airflowVersion?: string }[]>;
  updateDeploymentImage(update: ImageUpdate, version: string, signal?: AbortSignal): Promise<ImageUpdateAnswer>;
}

/** Flags of a platform that predates `featureFlags` come from the top-level booleans it did have. */
export function featureFlagsOf(config: z.infer<typeof appConfigSchema>): SoftwareFeatureFlags {
  const raw = config.featureFlags ?? {};
  const flag = (name: keyof SoftwareFeatureFlags) => raw[name] === true;
  const flags: SoftwareFeatureFlags = {
    dagOnlyDeployment: flag('dagOnlyDeployment'),
    byoUpdateRegistryEnabled: flag('byoUpdateRegistryEnabled'),
    nfsMountDagDeployment: flag('nfsMountDagDeployment'),
    gitSyncDagDeployment: flag('gitSyncDagDeployment'),
    hardDeleteDeployment: flag('hardDeleteDeployment'),
    manualNamespaceNames: flag('manualNamespaceNames'),
    triggererEnabled: flag('triggererEnabled'),
    namespaceFreeFormEntry: flag('namespaceFreeFormEntry'),
    astroRuntimeEnabled: flag('astroRuntimeEnabled'),
  };
  if (Object.values(flags).every((v) => !v)) {
    flags.nfsMountDagDeployment = config.nfsMountDagDeployment === true;
    flags.hardDeleteDeployment = config.hardDeleteDeployment === true;
    flags.manualNamespaceNames = config.manualNamespaceNames === true;
    flags.triggererEnabled = config.triggererEnabled === true;
    flags.namespaceFreeFormEntry = config.namespaceFreeFormEntry === true;
  }
  return flags;
}

export function createSoftwareDeployApi(client: HoustonClient): SoftwareDeployApi {
  return {
    async platformVersion(signal) {
      const answer = await client.request(PLATFORM_VERSION_QUERY, undefined, z.object({ appConfig: z.looseObject({ version: text }).nullish() }), signal);
      return answer.appConfig?.version ?? '';
    },

    async getWorkspace(id, signal) {
      const answer = await client.request(GET_WORKSPACE_QUERY, { workspaceUuid: id }, z.object({ workspace: workspaceSchema.nullish() }), signal);
      return answer.workspace ?? undefined;
    },

    async listDeployments(workspaceId, version, signal) {
      const query = pickForVersion(WORKSPACE_DEPLOYMENTS_QUERIES, version);
      const answer = await client.request(query, { workspaceId }, z.object({ workspaceDeployments: z.array(deploymentSummarySchema).nullish() }), signal);
      return answer.workspaceDeployments ?? [];
    },

    async getDeployment(id, version, signal) {
      const query = pickForVersion(DEPLOYMENT_QUERIES, version);
      const answer = await client.request(query, { id }, z.object({ deployment: deploymentDetailsSchema.nullish() }), signal);
      return answer.deployment ?? undefined;
    },

    async appConfig(scope, version, signal) {
      const query = pickForVersion(APP_CONFIG_QUERIES, version);
      const declared = pickForVersion(APP_CONFIG_VARIABLES, version);
      const values: Record<string, string | undefined> = {
        clusterId: scope.clusterId,
        workspaceUuid: scope.workspaceId,
        deploymentUuid: scope.deploymentId,
      };
      const variables = Object.fromEntries(declared.filter((name) => values[name]).map((name) => [name, values[name]]));
      const answer = await client.request(
        query,
        Object.keys(variables).length > 0 ? variables : undefined,
        z.object({ appConfig: appConfigSchema.nullish() }),
        signal,
      );
      const config = answer.appConfig ?? appConfigSchema.parse({});
      return {
        version: config.version,
        baseDomain: config.baseDomain,
        byoUpdateRegistryHost: config.byoUpdateRegistryHost,
        flags: featureFlagsOf(config),
      };
    },

    async deploymentConfig(version, signal) {
      const query = pickForVersion(DEPLOYMENT_CONFIG_QUERIES, version);
      const answer = await client.request(query, undefined, z.object({ deploymentConfig: deploymentConfigSchema.nullish() }), signal);
      return answer.deploymentConfig ?? {};
    },

    async runtimeReleases(clusterId, signal) {
      const answer = await client.request(
        RUNTIME_RELEASES_QUERY,
        clusterId ? { clusterId } : undefined,
        z.object({ runtimeReleases: z.array(runtimeReleaseSchema).nullish() }),
        signal,
      );
      return answer.runtimeReleases ?? [];
    },

    async updateDeploymentImage(update, version, signal) {
      requirePlatformVersion(version, '0.29.2', 'UpdateDeploymentImage');
      const document = pickForVersion(IMAGE_UPDATE_MUTATIONS, version);
      const variables: Record<string, string> = { releaseName: update.releaseName, image: update.image };
      if (update.runtimeVersion) variables.runtimeVersion = update.runtimeVersion;
      if (update.airflowVersion && document.acceptsAirflowVersion) variables.airflowVersion = update.airflowVersion;
      const answerSchema = z.looseObject({ releaseName: text, runtimeVersion: text, airflowVersion: text });
      const answer = await client.request(document.query, variables, z.object({ [document.field]: answerSchema.nullish() }), signal);
      const result = (answer as Record<string, z.infer<typeof answerSchema> | null | undefined>)[document.field];
      return { releaseName: result?.releaseName, runtimeVersion: result?.runtimeVersion, airflowVersion: result?.airflowVersion };
    },
  };
}
