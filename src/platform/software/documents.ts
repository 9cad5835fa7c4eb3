/**
 * The GraphQL documents `astro deploy` sends to Houston, keyed by the first platform version each shape is for
 * (see versions.ts `pickForVersion`). Field lists are the ones Astronomer's CLI selects, so a platform that serves
 * that CLI serves these.
 */

export const PLATFORM_VERSION_QUERY = 'query AppConfig { appConfig { version } }';

export const GET_WORKSPACE_QUERY = `query GetWorkspace($workspaceUuid: Uuid!) {
  workspace(workspaceUuid: $workspaceUuid) {
    id label description createdAt updatedAt
    roleBindings { role user { id username } serviceAccount { id label } }
  }
}`;

export const WORKSPACE_DEPLOYMENTS_QUERIES: Readonly<Record<string, string>> = {
  '0.25.0': `query GetDeployment($workspaceId: Uuid!, $releaseName: String) {
  workspaceDeployments(workspaceUuid: $workspaceId, releaseName: $releaseName) {
    id type label releaseName workspace { id } deployInfo { nextCli current } version airflowVersion createdAt updatedAt
  }
}`,
  '0.29.0': `query GetDeployment($workspaceId: Uuid!, $releaseName: String) {
  workspaceDeployments(workspaceUuid: $workspaceId, releaseName: $releaseName) {
    id type label releaseName workspace { id } deployInfo { nextCli current } version airflowVersion runtimeVersion createdAt updatedAt
  }
}`,
  '1.0.0': `query GetDeployment($workspaceId: Uuid!, $releaseName: String) {
  workspaceDeployments(workspaceUuid: $workspaceId, releaseName: $releaseName) {
    id type label releaseName workspace { id } deployInfo { nextCli current } version runtimeVersion clusterId createdAt updatedAt
  }
}`,
};

export const DEPLOYMENT_QUERIES: Readonly<Record<string, string>> = {
  '0.25.0': `query GetDeployment($id: String!) {
  deployment(where: {id: $id}) { id airflowVersion desiredAirflowVersion urls { type url } }
}`,
  '0.29.0': `query GetDeployment($id: String!) {
  deployment(where: {id: $id}) {
    id airflowVersion desiredAirflowVersion runtimeVersion desiredRuntimeVersion runtimeAirflowVersion releaseName
    urls { type url } dagDeployment { type }
  }
}`,
  '1.0.0': `query GetDeployment($id: String!) {
  deployment(where: {id: $id}) { id runtimeVersion runtimeAirflowVersion releaseName urls { type url } dagDeployment { type } clusterId }
}`,
};

const APP_CONFIG_025_FIELDS =
  'version baseDomain smtpConfigured manualReleaseNames configureDagDeployment nfsMountDagDeployment manualNamespaceNames hardDeleteDeployment';
const APP_CONFIG_028_FIELDS = `${APP_CONFIG_025_FIELDS} triggererEnabled featureFlags`;
const APP_CONFIG_0292_FIELDS = `${APP_CONFIG_028_FIELDS} byoUpdateRegistryHost`;

export const APP_CONFIG_QUERIES: Readonly<Record<string, string>> = {
  '0.25.0': `query AppConfig { appConfig { ${APP_CONFIG_025_FIELDS} } }`,
  '0.28.0': `query AppConfig { appConfig { ${APP_CONFIG_028_FIELDS} } }`,
  '0.29.2': `query AppConfig { appConfig { ${APP_CONFIG_0292_FIELDS} } }`,
  '1.0.0': `query AppConfig($clusterId: Uuid) { appConfig(clusterId: $clusterId) { ${APP_CONFIG_0292_FIELDS} } }`,
  '2.0.0': `query AppConfig($clusterId: Uuid, $workspaceUuid: Uuid, $deploymentUuid: Uuid) {
  appConfig(clusterId: $clusterId, workspaceUuid: $workspaceUuid, deploymentUuid: $deploymentUuid) {
    version baseDomain byoUpdateRegistryHost smtpConfigured featureFlags
  }
}`,
};

/** Which appConfig variables each shape declares (the others must not be sent: undeclared variables are an error). */
export const APP_CONFIG_VARIABLES: Readonly<Record<string, readonly string[]>> = {
  '0.25.0': [],
  '0.28.0': [],
  '0.29.2': [],
  '1.0.0': ['clusterId'],
  '2.0.0': ['clusterId', 'workspaceUuid', 'deploymentUuid'],
};

export const DEPLOYMENT_CONFIG_QUERIES: Readonly<Record<string, string>> = {
  '0.25.0': 'query DeploymentInfo { deploymentConfig { airflowImages { version tag } airflowVersions defaultAirflowImageTag } }',
  '1.0.1': 'query DeploymentInfo { deploymentConfig { __typename } }',
};

export const RUNTIME_RELEASES_QUERY = `query runtimeReleases($airflowVersion: String, $clusterId: Uuid) {
  runtimeReleases(airflowVersion: $airflowVersion, clusterId: $clusterId) { version airflowVersion airflowDatabaseMigrations }
}`;

export interface ImageUpdateDocument {
  query: string;
  /** The field of `data` that carries the answer. */
  field: 'updateDeploymentImage' | 'upsertDeployment';
  /** Whether the document declares `$airflowVersion`. */
  acceptsAirflowVersion: boolean;
}

export const IMAGE_UPDATE_MUTATIONS: Readonly<Record<string, ImageUpdateDocument>> = {
  '0.25.0': {
    query: `mutation updateDeploymentImage($releaseName: String!, $image: String!, $airflowVersion: String, $runtimeVersion: String) {
  updateDeploymentImage(releaseName: $releaseName, image: $image, airflowVersion: $airflowVersion, runtimeVersion: $runtimeVersion) {
    releaseName airflowVersion runtimeVersion
  }
}`,
    field: 'updateDeploymentImage',
    acceptsAirflowVersion: true,
  },
  '1.0.1': {
    query: `mutation updateDeploymentImage($releaseName: String!, $image: String!, $runtimeVersion: String!) {
  updateDeploymentImage(releaseName: $releaseName, image: $image, runtimeVersion: $runtimeVersion) { releaseName runtimeVersion }
}`,
    field: 'updateDeploymentImage',
    acceptsAirflowVersion: false,
  },
  '2.1.0': {
    query: `mutation upsertDeployment($releaseName: String!, $image: String!, $runtimeVersion: String!) {
  upsertDeployment(releaseName: $releaseName, image: $image, runtimeVersion: $runtimeVersion) { id releaseName runtimeVersion }
}`,
    field: 'upsertDeployment',
    acceptsAirflowVersion: false,
  },
};
