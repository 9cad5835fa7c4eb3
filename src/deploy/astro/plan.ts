/**
 * The Astro side of the deploy plan: what the Deployment runs now, read from the platform with GETs only (the
 * Deployment's image tag and DAG bundle version, and the deploys that put them there with what this CLI recorded in
 * their descriptions), and the plan's steps as `--dry-run` shows them.
 */
import { IMAGE_INPUTS_LABEL } from '../../image/labels.js';
import { byString } from '../../util/compare.js';
import type { PushedImage } from '../../image/registry.js';
import type { AstroControlPlane } from '../../platform/astro/client.js';
import type { Deploy, Deployment, DeployType } from '../../platform/astro/schemas.js';
import { readContentTrailer, type DeployedPart, type PartComparison, type PlanDecision } from '../kernel/plan.js';

/** How far back the plan looks for the deploys that put the running image and bundle there. */
export const DEPLOYS_LOOKED_AT = 50;

export interface DeployedState {
  image?: DeployedPart;
  dags?: DeployedPart;
  /** The newer of the two: the deploy a no-op names. */
  latest?: DeployedPart;
}

function part(deploy: Deploy, which: 'image' | 'dags'): DeployedPart {
  const recorded = readContentTrailer(deploy.description)?.[which];
  const commit = deploy.git?.commitSha;
  return {
    deployId: deploy.id,
    ...(deploy.createdAt ? { at: deploy.createdAt } : {}),
    ...(recorded ? { recorded, recordedIn: 'description' as const } : {}),
    ...(commit ? { commit } : {}),
  };
}

/** The repository this Deployment's images were last pushed to, by its deploy list. */
export function lastImageRepository(deploys: Deploy[]): string | undefined {
  return newestImageDeploy(deploys)?.imageRepository || undefined;
}

/** The newest finished deploy that shipped an image: the one whose image the Deployment runs, unless rolled back. */
function newestImageDeploy(deploys: Deploy[]): Deploy | undefined {
  return deploys.find((d) => d.status === 'DEPLOYED' && d.type !== 'DAG_ONLY');
}

/** What the registry said about a deploy's pushed image; `image` undefined when it could not say. */
interface Inspection {
  deployId: string;
  image: PushedImage | undefined;
}

/** Reads for the plan, asked for before the Deployment's own answer arrives (when its id is given up front). */
export interface PrefetchedDeployed {
  deploys: Promise<Deploy[]>;
  /**
   * The registry's digest and labels of the newest image deploy's image, asked for as soon as the list arrives when
   * readDeployed would ask (no recorded image digest, or `alwaysInspect`). Used when the Deployment still runs it.
   */
  inspection?: Promise<Inspection | undefined>;
  /** Whether `inspection` reads the registry (known once the list arrives): the plan then waits on the registry. */
  readsRegistry?: Promise<boolean>;
}

type RegistryInspect = { inspect: (repository: string, tag: string) => Promise<PushedImage | undefined>; alwaysInspect: boolean };

/**
 * Starts the plan's reads of a Deployment named up front: its deploy list, then, without waiting for anything else,
 * the registry read the plan would make of the image it traces. GETs only; failures surface where they are used.
 */
export function prefetchDeployed(
  controlPlane: AstroControlPlane,
  organizationId: string,
  deploymentId: string,
  signal: AbortSignal,
  registry?: RegistryInspect,
): PrefetchedDeployed | undefined {
  if (!controlPlane.listDeploys) return undefined;
  const deploys = controlPlane.listDeploys(organizationId, deploymentId, DEPLOYS_LOOKED_AT, signal);
  deploys.catch(() => undefined);
  if (!registry) return { deploys };
  const toRead = (list: Deploy[]) => {
    const deploy = newestImageDeploy(list);
    if (!deploy?.imageRepository || !deploy.imageTag) return undefined;
    if (!registry.alwaysInspect && readContentTrailer(deploy.description)?.image) return undefined;
    return { id: deploy.id, repository: deploy.imageRepository, tag: deploy.imageTag };
  };
  const inspection = deploys.then(async (list): Promise<Inspection | undefined> => {
    const deploy = toRead(list);
    if (!deploy) return undefined;
    return { deployId: deploy.id, image: await registry.inspect(deploy.repository, deploy.tag).catch(() => undefined) };
  });
  inspection.catch(() => undefined);
  const readsRegistry = deploys.then(
    (list) => toRead(list) !== undefined,
    () => false,
  );
  return { deploys, inspection, readsRegistry };
}

/**
 * The deploys behind what the Deployment runs: the newest finished deploy that shipped an image, if the Deployment
 * still runs its tag; the newest that shipped a bundle, if it still runs its version. Anything else (a rollback, a
 * deploy by another tool that the list no longer reaches) leaves that part untraced, so it ships.
 */
export async function readDeployed(
  controlPlane: AstroControlPlane,
  organizationId: string,
  deployment: Deployment,
  signal: AbortSignal,
  /** The same reads, already asked for (by the id the user gave, which must be this Deployment's). */
  prefetched?: PrefetchedDeployed,
  /**
   * The registry's digest and labels of a pushed image: read when the description kept no image digest (the image's
   * own label may), or always when `alwaysInspect` (a dry run shows the digest). A failed read is no answer.
   */
  registry?: RegistryInspect,
): Promise<DeployedState> {
  if (!controlPlane.listDeploys) return {};
  const listed = prefetched?.deploys ?? controlPlane.listDeploys(organizationId, deployment.id, DEPLOYS_LOOKED_AT, signal);
  const deploys = (await listed).filter((d) => d.status === 'DEPLOYED');
  const imageDeploy = newestImageDeploy(deploys);
  const dagsDeploy = deploys.find((d) => d.type !== 'IMAGE_ONLY' && d.dagTarballVersion);
  const state: DeployedState = {};
  if (imageDeploy && deployment.imageTag && imageDeploy.imageTag === deployment.imageTag) state.image = part(imageDeploy, 'image');
  if (state.image && imageDeploy?.imageRepository && registry && (registry.alwaysInspect || !state.image.recorded)) {
    const early = await prefetched?.inspection?.catch(() => undefined);
    const pushed =
      early?.deployId === imageDeploy.id ? early.image : await registry.inspect(imageDeploy.imageRepository, imageDeploy.imageTag).catch(() => undefined);
    if (pushed) {
      state.image.imageDigest = pushed.digest;
      const label = /^sha256:([0-9a-f]{64})$/.exec(pushed.labels[IMAGE_INPUTS_LABEL] ?? '')?.[1];
      if (!state.image.recorded && label) Object.assign(state.image, { recorded: label.slice(0, 32), recordedIn: 'image label' as const });
    }
  }
  if (deployment.isDagDeployEnabled && dagsDeploy && dagsDeploy.dagTarballVersion === deployment.dagTarballVersion) state.dags = part(dagsDeploy, 'dags');
  const candidates = [state.image, state.dags].filter((p): p is DeployedPart => p !== undefined);
  // ISO 8601 times order as strings; localeCompare would first load ICU's collator (6 ms of a no-op redeploy).
  state.latest = candidates.sort((a, b) => byString(b.at ?? '', a.at ?? ''))[0];
  return state;
}

export type PlanPhase = 'select' | 'parse' | 'build' | 'push' | 'upload' | 'finalize';

export interface PlanStep {
  phase: PlanPhase;
  action: 'run' | 'skip';
  detail: string;
  /** Bytes that would move or be packed (build context, DAG bundle). */
  bytes?: number;
  digest?: string;
}

export interface LocalContent {
  image?: { digest: string; contextBytes: number; contextFiles: number; baseImage?: string };
  dags?: { digest: string; bytes: number; files: number; dagFiles: number };
}

export interface DeployPlan {
  deployment: { id: string; name: string; dagDeployEnabled: boolean; imageTag?: string; dagTarballVersion?: string };
  deployed: DeployedState;
  local: LocalContent;
  image: PartComparison;
  dags?: PartComparison;
  decision: PlanDecision;
  steps: PlanStep[];
}

/** The steps of the plan in order, each run or skipped with the reason. */
export function planSteps(input: {
  deployment: Deployment;
  decision: PlanDecision;
  local: LocalContent;
  parse: boolean;
  image: PartComparison;
  dags?: PartComparison;
}): PlanStep[] {
  const { deployment, decision, local } = input;
  const noop = decision.action === 'noop';
  const type: DeployType = decision.type;
  const dagDeploy = deployment.isDagDeployEnabled;
  const shipsImage = !noop && type !== 'DAG_ONLY';
  const shipsBundle = !noop && dagDeploy && type !== 'IMAGE_ONLY';
  const skipWhy = noop ? decision.why : decision.automatic || type === 'DAG_ONLY' ? input.image.why : '';
  const steps: PlanStep[] = [{ phase: 'select', action: 'run', detail: `${deployment.name} (${deployment.id}), DAG deploys ${dagDeploy ? 'on' : 'off'}` }];
  const parses = input.parse && (shipsBundle || (shipsImage && !dagDeploy));
  steps.push(
    parses
      ? { phase: 'parse', action: 'run', detail: 'the DAGs that ship are parsed first' }
      : { phase: 'parse', action: 'skip', detail: noop ? decision.why : 'no DAGs ship, or parsing is off' },
  );
  const image = local.image;
  if (shipsImage) {
    steps.push({
      phase: 'build',
      action: 'run',
      detail: `${input.image.why}; build context ${image ? `${image.contextFiles} files` : 'unknown'}${image?.baseImage ? `, base ${image.baseImage}` : ''}`,
      ...(image ? { bytes: image.contextBytes, digest: `sha256:${image.digest}` } : {}),
    });
    steps.push({ phase: 'push', action: 'run', detail: "the built image, to the Deployment's registry under a new tag" });
  } else {
    const why = noop ? decision.why : skipWhy || (type === 'DAG_ONLY' ? 'DAG-only deploy' : 'no image ships');
    steps.push({ phase: 'build', action: 'skip', detail: why, ...(image ? { digest: `sha256:${image.digest}` } : {}) });
    steps.push({ phase: 'push', action: 'skip', detail: why });
  }
  const dags = local.dags;
  if (shipsBundle) {
    steps.push({
      phase: 'upload',
      action: 'run',
      detail: `${input.dags?.why ?? 'DAG bundle'}; ${dags ? `${dags.files} files (${dags.dagFiles} DAG files)` : ''}`.replace(/; $/, ''),
      ...(dags ? { bytes: dags.bytes, digest: `sha256:${dags.digest}` } : {}),
    });
  } else {
    steps.push({
      phase: 'upload',
      action: 'skip',
      detail: noop ? decision.why : dagDeploy ? 'image-only deploy' : 'DAG deploys are off: the DAGs ship inside the image',
    });
  }
  steps.push(
    noop
      ? { phase: 'finalize', action: 'skip', detail: 'no deploy is created' }
      : { phase: 'finalize', action: 'run', detail: `a ${type} deploy is created and finalized` },
  );
  return steps;
}
