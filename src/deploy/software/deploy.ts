/**
 * `astro deploy` for Astronomer Software (Houston): choose the Deployment in the workspace, read what the platform
 * allows (feature flags, DAG deployment type, version), then ship code the way that Deployment receives it:
 *
 * - the image to the platform's registry as `<registry>/<release>/airflow:<nextCli>`: Houston rolls it out itself;
 * - with a custom registry, the image to the user's registry (their own Docker credentials), then
 *   `updateDeploymentImage` naming it by tag or by the digest the registry stored;
 * - DAGs to the Deployment's DAG server (dag_deploy), or not at all when they arrive through NFS or git-sync.
 *
 * Every refusal happens before anything is built or pushed. Houston, the engine, the registry credentials and
 * the DAG server come in through ports.
 */
import { UserError } from '../../errors.js';
import type {
  DagDeploymentType,
  SoftwareAppConfig,
  SoftwareDeployApi,
  SoftwareDeploymentDetails,
  SoftwareDeploymentSummary,
} from '../../platform/software/deploy-api.js';
import { gateVersion, parsePlatformVersion, requirePlatformVersion, versionAtLeast } from '../../platform/software/versions.js';
import { registryHostname, type DockerCredentials } from '../../image/docker-credentials.js';
import { AIRFLOW_VERSION_LABEL, DESCRIPTION_LABEL, RUNTIME_VERSION_LABEL, SKIP_REVISION_LABEL } from '../../image/labels.js';
import { legacySoftwareRegistry } from '../../platform/domain.js';
import { SHA256_DIGEST } from '../../image/registry.js';
import { localSteps, type CommonDeployRequest, type DagBundle, type LocalDeployPorts, type RegistryCredentials } from '../kernel/local.js';
import { PhaseRunner, type Timings } from '../kernel/phases.js';
import { explainFailure, interruptedDeploy, newReached } from '../kernel/reached.js';

export const NOT_DAG_DEPLOY_MESSAGE = "to perform this operation, first set the Deployment type to 'dag_deploy' via the UI or the API or the CLI";
export const IMAGE_FLAG_ON_IMAGE_DEPLOYMENT = '--image only works for Dag-only, Git-sync-based and NFS-based deployments';
export const IMAGE_FLAG_SKIPS_DAGS = 'Dags in the project will not be deployed since --image is passed.';
export const CUSTOM_REGISTRY_HOST_MISSING =
  'Custom registry host is not set in config. It can be set at astronomer.houston.config.deployments.registry.protectedCustomRegistry.updateRegistry.host';
export const NO_REGISTRY_URL = 'no valid registry url found failed to push';
export const NO_WORKSPACE =
  'failed to find a valid workspace: failed to get current workspace: current workspace context not set, you can switch to a workspace with \n\tastro workspace switch WORKSPACEID';

/** The cluster-level switch for DAG-only deploys, named as the platform's Helm values name it. */
export function dagOnlyDisabledMessage(platformVersion: string): string {
  return versionAtLeast(gateVersion(platformVersion), '2.0.0')
    ? 'to perform this operation, set both deployments.deployMechanisms.dagOnlyDeployment.enabled and deployments.deployMechanisms.configureDagDeployment.enabled to true in your APC cluster'
    : 'to perform this operation, set both deployments.dagOnlyDeployment and deployments.configureDagDeployment to true in your APC cluster';
}

export interface SoftwareDeployRequest extends CommonDeployRequest {
  /** The context's domain: `registry.<domain>` is the registry of platforms older than 1.0.0. */
  domain: string;
  /** The context's workspace. */
  contextWorkspaceId?: string;
  /** --remote (with --image-name): only point the Deployment at that image, which already is in a registry. */
  remote?: { runtimeVersion: string };
  /** `sha_as_tag` / --sha-as-tag: name the custom-registry image by digest in the image update. */
  shaAsTag: boolean;
}

export interface SoftwareDeployPorts extends LocalDeployPorts {
  houston: SoftwareDeployApi;
  /** The raw Houston token: registry password and DAG server authorization. */
  token: string;
  /** The user's own credentials for a custom registry host (Docker config and credential helpers). */
  dockerCredentials: (host: string) => Promise<DockerCredentials | undefined>;
  uploadDags: (input: { url: string; data: Buffer; description: string; signal: AbortSignal }) => Promise<{ attempts: number }>;
  /** The tag of the Dockerfile's FROM image, for the version check of older platforms. */
  dockerfileTag: (projectDir: string) => Promise<string | undefined>;
}

export type DagsDelivery = 'dag-server' | 'image' | 'nfs' | 'git-sync' | 'not-deployed';

export interface SoftwareDeployResult {
  platform: 'software';
  deploymentId: string;
  releaseName: string;
  label?: string;
  workspaceId: string;
  platformVersion: string;
  dagDeploymentType: DagDeploymentType;
  image?: {
    /** Where the image was pushed (absent for --remote). */
    pushedAs?: string;
    digest?: string;
    registry: 'default' | 'custom' | 'remote';
    /** The image Houston was told to run through the image update (custom registry and --remote). */
    updatedTo?: string;
    runtimeVersion?: string;
    airflowVersion?: string;
  };
  dags: { delivery: DagsDelivery; bytes?: number; dagFiles?: number; attempts?: number };
  airflowUrl?: string;
  timings: Timings;
}

export async function deployToSoftware(req: SoftwareDeployRequest, ports: SoftwareDeployPorts): Promise<SoftwareDeployResult> {
  const { signal } = ports;
  const now = ports.now ?? Date.now;
  const runner = new PhaseRunner(ports.emit, signal, now);
  const reached = newReached('image update');
  const steps = localSteps(req, ports, runner, {
    emptyDagsCancelMessage: 'no DAGs found in the dags folder. User canceled the operation',
    prebuiltNotice: 'Skipping building image since --image-name flag is used...',
  });
  const notice = (message: string) => ports.emit({ type: 'notice', message });
  const warn = (message: string) => ports.emit({ type: 'warning', message });
  const timings = runner.timings;

  try {
    const result = await run();
    await runner.finish();
    return result;
  } catch (error) {
    await runner.finish();
    if (signal.aborted) throw interruptedDeploy(signal, runner, reached, error);
    throw explainFailure(error, reached, 'Houston');
  }

  async function run(): Promise<SoftwareDeployResult> {
    const { houston } = ports;
    const { version, deployment, details, appConfig, workspaceId } = await runner.run('select', () => resolveTarget(req, ports));
    const releaseName = details.releaseName ?? deployment.releaseName;
    const dagType = dagDeploymentTypeOf(details);
    const flags = appConfig.flags;
    const airflowUrl = details.urls?.find((u) => u.type === 'airflow')?.url;
    notice(`Deploying: ${releaseName}`);
    if (req.save) await ports.saveDeploymentId(deployment.id);

    const base = {
      platform: 'software' as const,
      deploymentId: deployment.id,
      releaseName,
      label: deployment.label,
      workspaceId,
      platformVersion: version,
      dagDeploymentType: dagType,
      ...(airflowUrl ? { airflowUrl } : {}),
    };

    if (req.remote) {
      const image = req.imageName!;
      Object.assign(reached.image, { ships: true, sent: true, as: image });
      await runner.run('finalize', async () => {
        reached.activation.state = 'unknown';
        await houston.updateDeploymentImage({ releaseName, image, runtimeVersion: req.remote!.runtimeVersion }, version, signal);
        reached.activation.state = 'done';
      });
      notice('Image successfully updated');
      return {
        ...base,
        image: { registry: 'remote', updatedTo: image, runtimeVersion: req.remote.runtimeVersion },
        dags: { delivery: 'not-deployed' },
        timings,
      };
    }

    // Refusals first: nothing is built for a deploy the Deployment cannot take.
    const dagServerOn = flags.dagOnlyDeployment;
    if (req.mode === 'dags') {
      if (!versionAtLeast(gateVersion(version), '0.34.0')) {
        throw new UserError(`DAG-only deploys (--dags) need Astronomer Software 0.34.0 or later; this platform reports ${version}.`, {
          nextStep: 'Run astro deploy without --dags to ship DAGs inside the image.',
        });
      }
      if (!dagServerOn)
        throw new UserError(dagOnlyDisabledMessage(version), {
          nextStep: 'Ask your platform team to enable DAG-only deploys, or run astro deploy without --dags.',
        });
      if (dagType !== 'dag_deploy') throw new UserError(NOT_DAG_DEPLOY_MESSAGE, { nextStep: dagsRefusalHint(dagType, deployment) });
      const dags = await shipDags(details, releaseName, req.description ?? 'Deployed via <astro deploy --dags>');
      return { ...base, dags, timings };
    }
    if (req.mode === 'image' && dagType === 'image') {
      throw new UserError(IMAGE_FLAG_ON_IMAGE_DEPLOYMENT, { nextStep: 'This Deployment takes its DAGs inside the image: run astro deploy without --image.' });
    }

    const target = imageTarget(req, { version, deployment, details, appConfig, releaseName, now });
    if (target.kind === 'custom') requirePlatformVersion(version, '0.29.2', 'UpdateDeploymentImage');
    // DAGs travel through the DAG server when the Deployment and the cluster both allow it; else inside the image.
    const dagsViaServer = dagType === 'dag_deploy' && dagServerOn;
    const uploadsDags = req.mode === 'full' && dagsViaServer;
    const shipsDagsInImage = !dagsViaServer && !req.imageName;
    const description = req.description ?? 'Deployed via <astro deploy>';

    if (req.showWarnings && !req.imageName) await checkImageTag(details, deployment, version);

    reached.image.ships = true;
    reached.image.liveOnArrival = target.kind === 'default';
    reached.dags.ships = uploadsDags;
    reached.dags.liveOnArrival = true;
    const bundle = uploadsDags ? await steps.bundle() : undefined;

    const shouldParse = steps.shouldParse((shipsDagsInImage || uploadsDags) && !req.imageName);
    const location = await steps.checkLocation(shouldParse);
    if (location === 'host') await steps.checks(shouldParse);

    const localRef = req.imageName ?? `${releaseName}/airflow:latest`;
    const labels = { [SKIP_REVISION_LABEL]: 'true', [DESCRIPTION_LABEL]: description };
    const image = await steps.image({ localRef, excludeDags: dagsViaServer, labels });
    if (location === 'image') await steps.checks(shouldParse, localRef);
    const runtimeVersion = image.labels[RUNTIME_VERSION_LABEL] || image.runtimeVersion || undefined;
    const airflowVersion = image.labels[AIRFLOW_VERSION_LABEL] || undefined;
    if (target.kind === 'custom' && !runtimeVersion && (versionAtLeast(gateVersion(version), '1.0.1') || !airflowVersion)) {
      throw new UserError(`the image should have label ${RUNTIME_VERSION_LABEL}`, {
        nextStep: 'Build the project FROM an Astro Runtime image, so that Houston knows which Runtime version the custom image runs.',
      });
    }

    const auth = await registryAuth(target);
    const pushed = await runner.run(
      'push',
      async () => {
        const imageId = req.imageName ? undefined : image.imageId;
        const result = await ports.image.push({ localRef, ...(imageId ? { imageId } : {}), remoteRef: target.remoteRef, auth, signal });
        Object.assign(reached.image, { sent: true, as: target.remoteRef });
        if (result.untagged) runner.trail(result.untagged);
        return result;
      },
      target.kind === 'custom' ? 'Pushing image to configured registry' : 'Pushing image to Astronomer registry',
    );

    let updatedTo: string | undefined;
    if (target.kind === 'custom') {
      if (req.shaAsTag && !SHA256_DIGEST.test(pushed.digest ?? '')) {
        throw new UserError(`The registry did not confirm a sha256 digest for ${target.remoteRef}, so the image cannot be named by digest.`, {
          nextStep: 'Deploy again, or set sha_as_tag to false to name the image by its tag.',
        });
      }
      updatedTo = req.shaAsTag ? `${target.repository}@${pushed.digest}` : target.remoteRef;
      await runner.run('finalize', async () => {
        reached.activation.state = 'unknown';
        await houston.updateDeploymentImage({ releaseName, image: updatedTo!, runtimeVersion, airflowVersion }, version, signal);
        reached.activation.state = 'done';
      });
    }

    let dags: SoftwareDeployResult['dags'];
    if (uploadsDags) {
      dags = await shipDags(details, releaseName, description, bundle);
    } else if (req.mode === 'image' && dagType !== 'image') {
      notice(IMAGE_FLAG_SKIPS_DAGS);
      dags = { delivery: 'not-deployed' };
    } else if (dagType === 'volume' || dagType === 'git_sync') {
      notice(
        dagType === 'volume'
          ? `DAGs of ${nameOf(deployment)} arrive through its NFS volume, not with astro deploy: copy DAG changes to the volume.`
          : `DAGs of ${nameOf(deployment)} arrive through git-sync, not with astro deploy: push DAG changes to the synced repository.`,
      );
      dags = { delivery: dagType === 'volume' ? 'nfs' : 'git-sync' };
    } else {
      dags = { delivery: req.imageName ? 'not-deployed' : 'image' };
    }

    return {
      ...base,
      image: {
        pushedAs: target.remoteRef,
        ...(pushed.digest ? { digest: pushed.digest } : {}),
        registry: target.kind,
        ...(updatedTo ? { updatedTo } : {}),
        ...(runtimeVersion ? { runtimeVersion } : {}),
        ...(airflowVersion ? { airflowVersion } : {}),
      },
      dags,
      timings,
    };
  }

  async function shipDags(
    details: SoftwareDeploymentDetails,
    releaseName: string,
    description: string,
    prebuilt?: DagBundle,
  ): Promise<SoftwareDeployResult['dags']> {
    const url = dagServerUrl(details, releaseName);
    Object.assign(reached.dags, { ships: true, liveOnArrival: true });
    let bundle = prebuilt;
    if (!bundle) {
      bundle = await steps.bundle();
      const shouldParse = steps.shouldParse(true);
      // No image is built for a DAG-only deploy: checks run on the host, or in the Dockerfile's base image.
      if (shouldParse || req.pytest) await steps.checks(shouldParse);
    }
    const data = bundle;
    const uploaded = await runner.run('upload', () => ports.uploadDags({ url, data: data.data, description, signal }));
    reached.dags.sent = true;
    return { delivery: 'dag-server', bytes: data.bytes, dagFiles: data.dagFileCount, attempts: uploaded.attempts };
  }

  async function registryAuth(target: ImageTarget): Promise<RegistryCredentials> {
    if (target.kind === 'default') return { username: 'user', password: ports.token, serveraddress: target.host };
    const credentials = await ports.dockerCredentials(target.host);
    if (!credentials) {
      warn(`Not able to login to the private registry, please use \`docker login ${target.host}\` to manually login to the registry`);
      return { username: '', password: '', serveraddress: target.host };
    }
    return {
      username: credentials.username,
      password: credentials.password,
      serveraddress: target.host,
      ...(credentials.identityToken ? { identitytoken: credentials.identityToken } : {}),
    };
  }

  /**
   * Platforms older than 1.0.0 tell which Airflow / Runtime versions a Deployment should move to; an image built on
   * another tag gets a warning and a chance to stop. Newer platforms do not select those fields, so this is a no-op.
   */
  async function checkImageTag(details: SoftwareDeploymentDetails, deployment: SoftwareDeploymentSummary, version: string): Promise<void> {
    if (!details.desiredAirflowVersion && !details.desiredRuntimeVersion) return;
    const tag = await ports.dockerfileTag(req.projectDir);
    if (!tag) return;
    let valid: string[];
    if (details.desiredAirflowVersion) {
      const config = await ports.houston.deploymentConfig(version, ports.signal);
      const tagVersion = parsePlatformVersion(/^v?\d+(?:\.\d+){0,2}/.exec(tag)?.[0]);
      valid = (config.airflowImages ?? []).filter((i) => i.tag && (!tagVersion || versionAtLeast(i.version, tagVersion.join('.')))).map((i) => i.tag!);
    } else {
      const releases = await ports.houston.runtimeReleases(details.clusterId ?? deployment.clusterId, ports.signal).catch(() => []);
      valid = releases.map((r) => r.version);
    }
    if (valid.includes(tag) || req.force) return;
    const question = `WARNING! You are about to push an image using the '${tag}' tag. This is not one of the versions this Deployment accepts${
      valid.length > 0 ? ` (${valid.slice(0, 8).join(', ')})` : ''
    }. Do you want to continue?`;
    const yes = await ports.confirm(question, ['--force']);
    if (!yes) throw new UserError('Canceling deploy...');
  }
}

interface ResolvedTarget {
  version: string;
  workspaceId: string;
  deployment: SoftwareDeploymentSummary;
  details: SoftwareDeploymentDetails;
  appConfig: SoftwareAppConfig;
}

async function resolveTarget(req: SoftwareDeployRequest, ports: SoftwareDeployPorts): Promise<ResolvedTarget> {
  const { houston, signal } = ports;
  const version = await houston.platformVersion(signal);
  const workspaceId = req.workspaceFlag ?? req.contextWorkspaceId;
  if (!workspaceId) {
    throw new UserError(NO_WORKSPACE, { nextStep: 'Pass --workspace-id <id>, or log in again and choose a workspace: astro login <domain>' });
  }
  const workspace = await houston.getWorkspace(workspaceId, signal);
  if (!workspace) throw new UserError(`no workspaces with id (${workspaceId}) found`);
  const deployments = await houston.listDeployments(workspaceId, version, signal);
  if (deployments.length === 0) {
    throw new UserError('no airflow deployments found', {
      nextStep: `Workspace ${workspace.label ?? workspaceId} has no Deployments: create one in the Software UI first.`,
    });
  }
  const deployment = await chooseSoftwareDeployment(req, deployments, workspace.label ?? workspaceId, ports);

  let details: SoftwareDeploymentDetails | undefined;
  try {
    details = await houston.getDeployment(deployment.id, version, signal);
  } catch (error) {
    if (signal.aborted) throw error;
    throw new UserError(`failed to get deployment info: ${(error as Error).message}`, { cause: error });
  }
  if (!details) throw new UserError(`failed to get deployment info: Houston has no Deployment ${deployment.id}`);

  let appConfig: SoftwareAppConfig;
  try {
    appConfig = await houston.appConfig({ clusterId: details.clusterId ?? deployment.clusterId, workspaceId, deploymentId: deployment.id }, version, signal);
  } catch (error) {
    if (signal.aborted) throw error;
    throw new UserError(`failed to get app config: ${(error as Error).message}`, { cause: error });
  }
  return { version, workspaceId, deployment, details, appConfig };
}

export async function chooseSoftwareDeployment(
  req: Pick<SoftwareDeployRequest, 'deploymentId' | 'deploymentName' | 'savedDeploymentId' | 'prompt' | 'autoSelect'>,
  deployments: SoftwareDeploymentSummary[],
  workspaceLabel: string,
  ports: Pick<SoftwareDeployPorts, 'choose' | 'emit'>,
): Promise<SoftwareDeploymentSummary> {
  const listHint = () => `Deployments in this workspace: ${deployments.map((d) => `${d.label ?? d.releaseName} (${d.id})`).join(', ')}`;
  const byId = (id: string, from: string) => {
    const found = deployments.find((d) => d.id === id);
    if (!found) throw new UserError('please specify a valid deployment ID', { nextStep: `${from} ${id} is not a Deployment of this workspace. ${listHint()}` });
    return found;
  };
  if (req.deploymentId) return byId(req.deploymentId, 'The id');
  if (req.deploymentName) {
    const matches = deployments.filter((d) => d.label === req.deploymentName || d.releaseName === req.deploymentName);
    if (matches.length === 0) throw new UserError(`No Deployment with the name ${req.deploymentName} was found`, { nextStep: listHint() });
    if (matches.length > 1) {
      ports.emit({ type: 'warning', message: `More than one Deployment with the name ${req.deploymentName} was found` });
    }
    return matches[0]!;
  }
  if (req.savedDeploymentId && !req.prompt) return byId(req.savedDeploymentId, 'The saved Deployment (project.deployment)');
  if (deployments.length === 1 && req.autoSelect) return deployments[0]!;
  const sorted = [...deployments].sort((a, b) => (a.label ?? a.releaseName).localeCompare(b.label ?? b.releaseName));
  return ports.choose(
    'Select which airflow deployment you want to deploy to',
    sorted.map((d) => ({ label: `${d.label ?? ''}  ${d.releaseName}  ${workspaceLabel}  ${d.id}`, value: d })),
    ['<deployment-id>', '--deployment-name'],
  );
}

export function dagDeploymentTypeOf(details: SoftwareDeploymentDetails): DagDeploymentType {
  const type = details.dagDeployment?.type;
  return type === 'dag_deploy' || type === 'volume' || type === 'git_sync' ? type : 'image';
}

type ImageTarget = { kind: 'default'; host: string; remoteRef: string } | { kind: 'custom'; host: string; remoteRef: string; repository: string };

/** Where the image goes: the custom registry when the platform says so, else the Deployment's registry. */
export function imageTarget(
  req: Pick<SoftwareDeployRequest, 'domain'>,
  input: {
    version: string;
    deployment: SoftwareDeploymentSummary;
    details: SoftwareDeploymentDetails;
    appConfig: SoftwareAppConfig;
    releaseName: string;
    now: () => number;
  },
): ImageTarget {
  const { version, deployment, details, appConfig, releaseName } = input;
  if (appConfig.flags.byoUpdateRegistryEnabled) {
    const repository = (appConfig.byoUpdateRegistryHost ?? '')
      .trim()
      .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
      .replace(/\/+$/, '');
    if (!repository) throw new UserError(CUSTOM_REGISTRY_HOST_MISSING);
    const tag = `deploy-${utcMinute(input.now())}`;
    return { kind: 'custom', host: registryHostname(repository), repository, remoteRef: `${repository}:${releaseName}-${tag}` };
  }
  const nextTag = deployment.deployInfo?.nextCli;
  if (!nextTag) {
    throw new UserError(`Houston did not say which tag the next image of ${releaseName} gets (deployInfo.nextCli is empty).`, {
      nextStep: 'Check the Deployment in the Software UI, then deploy again.',
    });
  }
  let registry: string;
  if (parsePlatformVersion(version) && versionAtLeast(version, '1.0.0')) {
    const url = details.urls?.find((u) => u.type === 'registry')?.url;
    if (!url)
      throw new UserError(NO_REGISTRY_URL, {
        nextStep: 'Houston lists no registry URL for this Deployment; ask your platform team to check the registry configuration.',
      });
    registry = url
      .trim()
      .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
      .replace(/\/+$/, '');
  } else {
    registry = legacySoftwareRegistry(req.domain);
  }
  return { kind: 'default', host: registryHostname(registry), remoteRef: `${registry}/${releaseName}/airflow:${nextTag}` };
}

/** `YYYY-MM-DDTHH-MM` in UTC: the custom-registry tag's time part. */
export function utcMinute(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace(':', '-');
}

/** The DAG server's upload URL: listed by Houston, or derived from the Airflow URL's host. */
export function dagServerUrl(details: SoftwareDeploymentDetails, releaseName: string): string {
  const listed = details.urls?.find((u) => u.type === 'dagserver')?.url;
  if (listed) return listed;
  const airflow = details.urls?.find((u) => u.type === 'airflow')?.url;
  if (airflow) {
    try {
      return `https://${new URL(airflow).host}/${releaseName}/dags/upload`;
    } catch {
      // Not a URL: fall through to the error below.
    }
  }
  throw new UserError(`Houston lists no DAG server for ${releaseName} (no dagserver or airflow URL).`, {
    nextStep: 'Check the Deployment in the Software UI; DAG-only deploys need its DAG server to be running.',
  });
}

function nameOf(d: SoftwareDeploymentSummary): string {
  return d.label ? `${d.label} (${d.releaseName})` : d.releaseName;
}

function dagsRefusalHint(type: DagDeploymentType, d: SoftwareDeploymentSummary): string {
  switch (type) {
    case 'volume':
      return `${nameOf(d)} receives DAGs through an NFS volume: copy them to the volume, or change its DAG deployment mechanism to "DAG only" (dag_deploy).`;
    case 'git_sync':
      return `${nameOf(d)} receives DAGs through git-sync: push them to the synced repository, or change its DAG deployment mechanism to "DAG only" (dag_deploy).`;
    default:
      return `${nameOf(d)} receives DAGs inside its image: run astro deploy without --dags, or change its DAG deployment mechanism to "DAG only" (dag_deploy).`;
  }
}
