/**
 * `astro deploy` for Astro: the Astro wing of the deploy kernel. Everything outside (API, engine, blob store,
 * parser, prompts) comes in through ports, so the order of steps and every refusal is testable on its own.
 *
 * Order, and why it differs from Astronomer's CLI: we check and build everything locally first (parse, tests,
 * DAG bundle, image build) and only then create the deploy, so a failed build leaves no INITIALIZED deploy
 * behind and the short-lived SAS URL is used right away. Push and upload run in parallel.
 */
import path from 'node:path';
import { UserError } from '../../errors.js';
import type { AstroSession } from '../../auth/session.js';
import type { AstroControlPlane } from '../../platform/astro/client.js';
import type { CreateDeployRequest, Deploy, Deployment, DeployType } from '../../platform/astro/schemas.js';
import { COMMIT_LABEL, DESCRIPTION_LABEL, IMAGE_INPUTS_LABEL } from '../../image/labels.js';
import type { PushedImage } from '../../image/registry.js';
import { MONITORING_DAG_FILE, monitoringDag, needsMonitoringDag, type GeneratedBundleFile } from '../../bundle/monitoring.js';
import type { GitInfo } from '../kernel/git.js';
import { localSteps, sameBuild, type CommonDeployRequest, type DagBundle, type EarlyImage, type LocalDeployPorts, type PlanPorts } from '../kernel/local.js';
import { comparePart, decide, describeWithContent, isDagFile, type PartComparison, type RecordedContent } from '../kernel/plan.js';
import { PhaseRunner, settleBoth, type EarlyPhase, type Timings } from '../kernel/phases.js';
import { explainFailure, interruptedDeploy, newReached } from '../kernel/reached.js';
import {
  lastImageRepository,
  planSteps,
  prefetchDeployed,
  readDeployed,
  type DeployedState,
  type DeployPlan,
  type LocalContent,
  type PrefetchedDeployed,
} from './plan.js';
import { chooseDeployment } from './select.js';
import { pollUntilHealthy } from './wait.js';

export interface DeployRequest extends CommonDeployRequest {
  wait?: { timeoutMs: number; intervalMs: number };
  gitMetadata: boolean;
  /** --dag-bundle-name: a named DAG bundle of the Deployment instead of the default one. */
  dagBundleName?: string;
  /** --dry-run: plan, print, send nothing that changes the platform. */
  dryRun?: boolean;
}

export interface DeployPorts extends LocalDeployPorts {
  session: AstroSession;
  controlPlane: AstroControlPlane;
  bundle: LocalDeployPorts['bundle'] & {
    /** `deploymentId`: whose bundle this is (where it went is remembered for the next deploy's prepareUpload). */
    upload: (input: { sasUrl: string; data: Buffer; signal: AbortSignal; deploymentId?: string }) => Promise<{ versionId: string }>;
    /** The bundle will ship: open a connection to where this Deployment's last bundle went. Returns at once. */
    prepareUpload?: (deploymentId: string) => void;
  };
  runtime: {
    /** Before the build: the Dockerfile's Runtime image must be valid and suit the Deployment. Returns notices. */
    preflight: (input: {
      projectDir: string;
      deployment: Deployment;
      supported: string[];
    }) => Promise<{ notices: string[]; expectedVersion?: string; fromImage?: string }>;
    /** After the build (or for --image-name): the image's Runtime label must suit the Deployment. Returns notices. */
    checkImage: (input: {
      label: string | undefined;
      fromImage?: string;
      imageName?: string;
      deployment: Deployment;
      supported: string[];
      expectedVersion?: string;
    }) => Promise<{ notices: string[]; version: string }>;
  };
  git: (projectDir: string) => Promise<GitInfo>;
  /** Read-only registry calls for the plan: the digest and labels of the image a deploy pushed (to a Deployment). */
  registry?: {
    inspect: (repository: string, tag: string, signal: AbortSignal, deploymentId: string) => Promise<PushedImage | undefined>;
    /** The plan may read this Deployment's registry: open a connection to where it was read last time. Returns at once. */
    prepare?: (deploymentId: string) => void;
    /** A token to push `repository` with (undefined: none could be had; the engine then asks with the credentials). */
    pushToken?: (repository: string, signal: AbortSignal) => Promise<string | undefined>;
  };
}

export interface DeployResult {
  deploymentId: string;
  deploymentName: string;
  workspaceId: string;
  deployId: string;
  type: DeployType;
  image?: { repository: string; tag: string; digest?: string; runtimeVersion?: string };
  dags?: { version: string; bytes: number; dagFiles: number };
  status: string;
  timings: Timings;
  /** The plan behind this deploy, when one was made. */
  plan?: DeployPlan;
}

/** Nothing changed: nothing was created, built, pushed or uploaded. */
export interface NoopResult {
  noop: true;
  deploymentId: string;
  deploymentName: string;
  workspaceId: string;
  /** The deploy the Deployment runs, which already has this project. */
  deployId: string;
  deployedAt?: string;
  status: string;
  plan: DeployPlan;
  timings: Timings;
}

/** --dry-run: the plan only. */
export interface DryRunResult {
  dryRun: true;
  deploymentId: string;
  deploymentName: string;
  workspaceId: string;
  status: string;
  plan: DeployPlan;
  timings: Timings;
}

export type AstroDeployOutcome = DeployResult | NoopResult | DryRunResult;

export async function deployToAstro(req: DeployRequest, ports: DeployPorts): Promise<AstroDeployOutcome> {
  const { session, controlPlane, signal } = ports;
  const runner = new PhaseRunner(ports.emit, signal, ports.now);
  const reached = newReached('finalize');
  const steps = localSteps(req, ports, runner, { emptyDagsCancelMessage: 'Canceling deploy...', prebuiltNotice: 'Skipping building image...' });
  const notice = (message: string) => ports.emit({ type: 'notice', message });
  const warn = (notices: string[]) => notices.forEach((message) => ports.emit({ type: 'warning', message }));
  let deploymentId: string | undefined;
  /**
   * Asked for while the Deployment is looked up, when its id is known up front: the plan's reads of the platform
   * and the registry (GETs), and the local reads (DAG bundle, image inputs) that need nothing from the platform.
   */
  let prefetched: PrefetchedDeployed | undefined;
  let earlyBundle: EarlyPhase<DagBundle> | undefined;
  let earlyImageInputs: ReturnType<PlanPorts['imageInputs']> | undefined;
  /** What the bundle carries beyond the DAGs folder: Hybrid Deployments are watched through a monitoring DAG. */
  const generatedFiles = (deployment: Deployment): GeneratedBundleFile[] | undefined =>
    needsMonitoringDag({ deploymentType: deployment.type, organizationProduct: session.organizationProduct })
      ? [monitoringDag(deployment.runtimeVersion)]
      : undefined;
  /** The DAG bundle: the one packed early if there is one and nothing is generated, else packed now. */
  const packBundle = (generated: GeneratedBundleFile[] | undefined): Promise<DagBundle> => {
    const early = earlyBundle;
    earlyBundle = undefined;
    if (early && !generated) return early.adopt();
    early?.drop();
    return steps.pack(generated);
  };
  const dropEarlyBundle = () => {
    earlyBundle?.drop();
    earlyBundle = undefined;
  };

  try {
    const outcome = await run();
    await runner.finish();
    return outcome;
  } catch (error) {
    await runner.finish();
    if (signal.aborted) {
      await settleFinalize();
      throw interruptedDeploy(signal, runner, reached, error);
    }
    throw explainFailure(error, reached, 'the Astro API');
  }

  /**
   * Interrupted while the finalize was on its way: only the platform knows whether it arrived. Ask it, briefly (the
   * signal that stopped us must not stop the question; a second Ctrl-C still exits at once).
   */
  async function settleFinalize(): Promise<void> {
    if (reached.activation.state !== 'unknown' || !reached.deployId || !controlPlane.getDeploy) return;
    const deploy = await controlPlane.getDeploy(session.organizationId, deploymentId!, reached.deployId, AbortSignal.timeout(3_000)).catch(() => undefined);
    // Still INITIALIZED: the finalize may yet be applied (it was sent), so the honest answer stays "unknown".
    if (deploy?.status !== undefined && deploy.status !== 'INITIALIZED') reached.activation.state = 'done';
  }

  /**
   * The plan: local content digests (the DAG bundle is packed here, and reused if it ships) and, for a full deploy or
   * a dry run, what the Deployment runs now. None without plan ports, or for a prebuilt image (nothing to digest).
   */
  async function makePlan(deployment: Deployment, generated: GeneratedBundleFile[] | undefined): Promise<{ plan: DeployPlan; bundle?: DagBundle } | undefined> {
    const planPorts = ports.plan;
    if (!planPorts || (req.imageName && !req.dryRun)) return undefined;
    const dagDeploy = deployment.isDagDeployEnabled;
    // The image inputs are read while the DAGs are packed: both only read the project. Those read early assumed DAG
    // deploys (dags/ left out of the image).
    const imageInputsTask =
      req.mode !== 'dags' && !req.imageName
        ? ((dagDeploy ? earlyImageInputs : undefined) ?? planPorts.imageInputs({ excludeDags: dagDeploy, buildSecrets: req.buildSecrets, signal }))
        : Promise.resolve(undefined);
    imageInputsTask.catch(() => undefined);
    const bundle = dagDeploy && req.mode !== 'image' ? await packBundle(generated) : undefined;
    const plan = await runner.run('plan', async () => {
      const [imageInputs, dagsDigest, deployed] = await Promise.all([
        imageInputsTask,
        bundle ? planPorts.dagsDigest(bundle) : undefined,
        req.mode === 'full' || req.dryRun
          ? readDeployed(
              controlPlane,
              session.organizationId,
              deployment,
              signal,
              deployment.id === req.deploymentId ? prefetched : undefined,
              ports.registry
                ? { inspect: (repository, tag) => ports.registry!.inspect(repository, tag, signal, deployment.id), alwaysInspect: req.dryRun === true }
                : undefined,
            )
          : ({} as DeployedState),
      ]);
      const dagsRel = path.relative(path.resolve(req.projectDir), steps.dagsDir).split(path.sep).join('/');
      // Git history speaks only for parts whose deploy recorded a commit but no digest (e.g. Astronomer's deploy action).
      const changed = new Map<string, string[] | undefined>();
      for (const p of [deployed.image, deployed.dags]) {
        if (p?.commit && !p.recorded && !changed.has(p.commit)) changed.set(p.commit, await planPorts.changedFiles(p.commit));
      }
      const image: PartComparison = req.imageName
        ? { state: 'changed', basis: 'none', why: '--image-name ships a prebuilt image' }
        : comparePart({
            what: 'image',
            local: imageInputs?.digest,
            deployed: deployed.image,
            changedFiles: deployed.image?.commit ? changed.get(deployed.image.commit) : undefined,
            // With DAG deploys on, the image leaves dags/ out: a DAG change is not an image change.
            counts: (f) => !dagDeploy || !isDagFile(f, dagsRel),
          });
      const dags: PartComparison | undefined = !dagDeploy
        ? undefined
        : req.dagBundleName !== undefined
          ? { state: 'unknown', basis: 'none', why: `the named DAG bundle ${req.dagBundleName} is not traced` }
          : comparePart({
              what: 'DAGs',
              local: dagsDigest,
              deployed: deployed.dags,
              changedFiles: deployed.dags?.commit ? changed.get(deployed.dags.commit) : undefined,
              counts: (f) => isDagFile(f, dagsRel),
            });
      const decision = decide({ mode: req.mode, dagDeploy, force: req.force, image, dags });
      const local: LocalContent = {
        ...(imageInputs ? { image: imageInputs } : {}),
        ...(bundle && dagsDigest
          ? { dags: { digest: dagsDigest, bytes: bundle.bytes, files: bundle.fileCount ?? bundle.dagFileCount, dagFiles: bundle.dagFileCount } }
          : {}),
      };
      const result: DeployPlan = {
        deployment: {
          id: deployment.id,
          name: deployment.name,
          dagDeployEnabled: dagDeploy,
          ...(deployment.imageTag ? { imageTag: deployment.imageTag } : {}),
          ...(deployment.dagTarballVersion ? { dagTarballVersion: deployment.dagTarballVersion } : {}),
        },
        deployed,
        local,
        image,
        ...(dags ? { dags } : {}),
        decision,
        steps: planSteps({ deployment, decision, local, parse: !req.skipParse, image, dags }),
      };
      return result;
    });
    return { plan, bundle };
  }

  /** The name a build of this Deployment's image gets locally. */
  function localImageRef(deployment: Deployment): string {
    return `${deployment.namespace || deployment.id}/airflow:latest`;
  }

  /** The labels a build carries: the deploy's description, its commit, and the digest of the image's inputs. */
  function imageLabels(description: string, git: GitInfo | undefined, inputsDigest: string | undefined): Record<string, string> {
    const labels: Record<string, string> = { [DESCRIPTION_LABEL]: description };
    if (git?.metadata) labels[COMMIT_LABEL] = git.metadata.commitSha;
    if (inputsDigest) labels[IMAGE_INPUTS_LABEL] = `sha256:${inputsDigest}`;
    return labels;
  }

  async function run(): Promise<AstroDeployOutcome> {
    if (!req.imageName && req.mode !== 'dags') ports.plan?.prepare?.();
    const known = req.deploymentId;
    if (ports.plan && known && !req.imageName && (req.mode === 'full' || req.dryRun)) {
      prefetched = prefetchDeployed(
        controlPlane,
        session.organizationId,
        known,
        signal,
        ports.registry
          ? { inspect: (repository, tag) => ports.registry!.inspect(repository, tag, signal, known), alwaysInspect: req.dryRun === true }
          : undefined,
      );
      ports.registry?.prepare?.(known);
      // Most Deployments have DAG deploys on: the image inputs without dags/ (read again if this one has them off).
      if (req.mode === 'full') earlyImageInputs = ports.plan.imageInputs({ excludeDags: true, buildSecrets: req.buildSecrets, signal });
      earlyImageInputs?.catch(() => undefined);
    }
    // Only the Deployment says whether it takes a DAG bundle; when it is named up front, the DAGs are packed while
    // it is looked up, and dropped if it does not take them.
    if (known && req.mode !== 'image') earlyBundle = steps.packEarly();
    // A DAG-only deploy uploads a bundle: the blob store's handshakes happen while the Deployment is looked up.
    if (known && req.mode === 'dags' && !req.dryRun) ports.bundle.prepareUpload?.(known);
    // Git metadata goes into the deploy's description: read while the rest happens (a dry run creates no deploy).
    // When the plan may find nothing to deploy, only once it found something (until then the build or the parse).
    const readGit = () => {
      const task = req.gitMetadata && !req.imageName && !req.dryRun ? ports.git(req.projectDir) : undefined;
      task?.catch(() => undefined);
      return task;
    };
    const mayBeNoop = ports.plan !== undefined && req.mode === 'full' && !req.imageName;
    let gitTask = mayBeNoop ? undefined : readGit();

    /** The build the deploy would make if the plan ships the image, started before the plan decides (see its caller). */
    async function buildEarly(deployment: Deployment, inputs: NonNullable<typeof earlyImageInputs>): Promise<EarlyImage | undefined> {
      gitTask ??= readGit();
      const [git, image] = await Promise.all([gitTask?.catch(() => undefined), inputs.catch(() => undefined)]);
      if (!image) return undefined;
      const description = req.description ?? git?.headSubject ?? '';
      return steps.imageEarly({ localRef: localImageRef(deployment), excludeDags: true, labels: imageLabels(description, git, image.digest) });
    }
    // What an image is checked against (the organization's, not the Deployment's): asked for while the Deployment is
    // looked up whenever an image may ship, instead of a round trip after the plan. A no-op or DAG-only outcome leaves
    // this one GET unused.
    const earlyOptions = req.mode !== 'dags' && !req.dryRun ? controlPlane.getDeploymentOptions(session.organizationId, signal) : undefined;
    earlyOptions?.catch(() => undefined);

    const deployment = await runner.run('select', () =>
      chooseDeployment(
        {
          organizationId: session.organizationId,
          workspaceId: req.workspaceFlag ?? session.workspaceId,
          workspaceFlag: req.workspaceFlag,
          deploymentId: req.deploymentId,
          deploymentName: req.deploymentName,
          savedDeploymentId: req.savedDeploymentId,
          prompt: req.prompt,
          autoSelect: req.autoSelect,
        },
        { controlPlane, choose: ports.choose, notice, signal },
      ),
    );
    deploymentId = deployment.id;

    if (deployment.isCicdEnforced && !session.isApiToken) {
      throw new UserError(`cannot deploy since ci/cd enforcement is enabled for the deployment ${deployment.name}. Please use API Tokens instead`, {
        nextStep: 'Deploy from your CI/CD pipeline with ASTRO_API_TOKEN set.',
      });
    }
    const dagDeploy = deployment.isDagDeployEnabled;
    if (!dagDeploy) dropEarlyBundle();
    if ((req.mode === 'dags' || req.mode === 'image') && !dagDeploy) {
      throw new UserError(
        `DAG-only deploys are not enabled for this Deployment. Run 'astro deployment update ${deployment.id} --dag-deploy enable' to enable DAG-only deploys`,
      );
    }
    if (req.save && !req.dryRun) await ports.saveDeploymentId(deployment.id);

    /** What the bundle carries beyond the DAGs folder, decided once for the plan and the deploy. */
    const generated = dagDeploy && req.mode !== 'image' ? generatedFiles(deployment) : undefined;
    // A plan that waits on the registry (the running image was deployed by another tool, which recorded no content
    // digest) would hold the build back by its round trips: the image is built meanwhile, and adopted if the plan
    // ships exactly it. Only where the early image inputs hold (DAG deploys on), never for --no-cache or a dry run.
    const earlyImage =
      req.mode === 'full' && !req.dryRun && !req.noCache && dagDeploy && earlyImageInputs && (await prefetched?.readsRegistry)
        ? await buildEarly(deployment, earlyImageInputs)
        : undefined;
    const planned = await makePlan(deployment, generated);
    const plan = planned?.plan;
    const summary = { deploymentId: deployment.id, deploymentName: deployment.name, workspaceId: deployment.workspaceId, status: deployment.status };
    if (req.dryRun) {
      dropEarlyBundle();
      if (!plan) throw new UserError('--dry-run cannot plan this deploy: there is nothing to compare it with.');
      return { dryRun: true, ...summary, plan, timings: runner.timings };
    }
    if (plan?.decision.action === 'noop') {
      const latest = plan.deployed.latest!;
      return { noop: true, ...summary, deployId: latest.deployId, ...(latest.at ? { deployedAt: latest.at } : {}), plan, timings: runner.timings };
    }
    gitTask ??= readGit();
    if (plan?.decision.automatic) {
      notice(
        `Only DAGs changed since deploy ${plan.deployed.latest?.deployId} (${plan.image.basis === 'git' ? 'git history' : 'content digests'}): deploying the DAGs only (DAG_ONLY).`,
      );
    }

    // Like Astronomer's CLI, a prebuilt image (--image-name) ships with the project's dags/ when DAG deploys are on;
    // only --image leaves the DAGs out.
    const type: DeployType =
      plan && !req.imageName ? plan.decision.type : req.mode === 'dags' ? 'DAG_ONLY' : req.mode === 'image' && dagDeploy ? 'IMAGE_ONLY' : 'IMAGE_AND_DAG';
    const shipsImage = type !== 'DAG_ONLY';
    // With DAG deploys off, DAGs travel inside the image; with them on, as a separate bundle.
    const shipsBundle = dagDeploy && type !== 'IMAGE_ONLY';
    reached.image.ships = shipsImage;
    reached.dags.ships = shipsBundle;
    // The push's registry token, asked for while the deploy is created, for the repository this Deployment's images
    // went to last time (the create's answer names it again), else once the create names it. The engine then skips
    // asking the token realm itself, on a connection of its own, at the start of the push.
    const pushTokens = new Map<string, Promise<string | undefined>>();
    const pushToken = (repository: string): Promise<string | undefined> => {
      let token = pushTokens.get(repository);
      if (!token) {
        token = ports.registry?.pushToken?.(repository, signal).catch(() => undefined) ?? Promise.resolve(undefined);
        pushTokens.set(repository, token);
      }
      return token;
    };
    const lastRepository =
      shipsImage && prefetched && deployment.id === req.deploymentId ? await prefetched.deploys.then(lastImageRepository, () => undefined) : undefined;
    if (lastRepository) ports.image.preparePush?.(lastRepository);
    if (!shipsBundle) dropEarlyBundle();
    else ports.bundle.prepareUpload?.(deployment.id);
    // What the image is checked against (asked for early, above, unless --dags); used after the local checks.
    const optionsTask = shipsImage ? (earlyOptions ?? controlPlane.getDeploymentOptions(session.organizationId, signal)) : undefined;
    optionsTask?.catch(() => undefined);

    // The DAG bundle is built first: it tells us whether there are DAGs at all, and must exist before the SAS URL does.
    const bundle = shipsBundle ? await steps.confirmBundle(planned?.bundle ?? (await packBundle(generated))) : undefined;
    if (bundle && generated) notice(`Hybrid Deployment: the DAG bundle also carries ${MONITORING_DAG_FILE}, the DAG Astronomer watches its workers with.`);

    // Unlike Astronomer's CLI, DAG-only deploys are parsed too: our parse takes seconds, a broken DAG takes a Deployment down.
    const shouldParse = steps.shouldParse(shipsBundle || (shipsImage && !dagDeploy && !req.imageName));
    // On the host the checks run before anything is built; without a host Python they run in the built image.
    const location = await steps.checkLocation(shouldParse);
    const checkNow = location === 'host' || !shipsImage;
    if (checkNow) await steps.checks(shouldParse);

    const git = await gitTask;
    if (git?.skippedBecause && git.metadata === undefined && git.headSubject !== undefined) notice(git.skippedBecause);
    const description = req.description ?? git?.headSubject ?? '';

    let localRef: string | undefined;
    /** The id of the image this deploy built (none for --image-name). */
    let builtImageId: string | undefined;
    let runtimeVersion: string | undefined;
    if (optionsTask) {
      localRef = req.imageName ?? localImageRef(deployment);
      const build = { localRef, excludeDags: dagDeploy, labels: imageLabels(description, git, req.imageName ? undefined : plan?.local.image?.digest) };
      const early = earlyImage && !req.imageName && sameBuild(earlyImage.input, build) ? earlyImage.phase : undefined;
      if (!early) earlyImage?.phase.drop();
      // The build starts before the runtime checks (the organization's options, the Dockerfile, the Runtime feed):
      // it is local, and a refusal drops it (aborted, nothing sent) with every other early phase.
      const building = req.imageName ? undefined : (early ?? steps.imageEarly(build).phase);
      const options = await optionsTask;
      const supported = options.runtimeReleases.map((r) => r.version);
      let preflight: { expectedVersion?: string; fromImage?: string } = {};
      if (!req.imageName) {
        const pre = await ports.runtime.preflight({ projectDir: req.projectDir, deployment, supported });
        warn(pre.notices);
        preflight = pre;
      }
      const image = building ? await building.adopt() : await steps.image(build);
      // From here on the image is named by what this build made: another deploy to the same Deployment may have
      // moved the local name to its own build meanwhile, and we must test and push ours.
      if (image.imageId && !req.imageName) localRef = builtImageId = image.imageId;
      const checked = await ports.runtime.checkImage({
        label: image.runtimeVersion,
        fromImage: preflight.fromImage,
        imageName: req.imageName,
        deployment,
        supported,
        expectedVersion: preflight.expectedVersion,
      });
      warn(checked.notices);
      runtimeVersion = checked.version;
      if (!checkNow) await steps.checks(shouldParse, localRef);
    }

    // What this deploy ships, recorded with it for the next run's plan (on this machine or any other).
    const recorded: RecordedContent = {
      ...(shipsImage && !req.imageName && plan?.local.image ? { image: plan.local.image.digest } : {}),
      ...(shipsBundle && plan?.local.dags ? { dags: plan.local.dags.digest } : {}),
    };
    const createBody: CreateDeployRequest = {
      type,
      description: describeWithContent(description, recorded),
      ...(git?.metadata ? { git: git.metadata } : {}),
      ...(req.dagBundleName !== undefined ? { dagBundleName: req.dagBundleName } : {}),
    };
    const creating = runner.run('create', () => controlPlane.createDeploy(session.organizationId, deployment.id, createBody, signal));
    // Once the create is on its way (nothing of the token's work before it), its round trip covering the token's.
    if (lastRepository) void pushToken(lastRepository);
    const created: Deploy = await creating;
    reached.deployId = created.id;

    const pushTask = shipsImage
      ? runner.run('push', async () => {
          if (!created.imageRepository || !created.imageTag)
            throw new UserError('The platform did not say where to push the image (no imageRepository/imageTag).');
          const remoteRef = `${created.imageRepository}:${created.imageTag}`;
          const host = created.imageRepository.split('/')[0]!;
          const registrytoken = ports.registry?.pushToken ? await pushToken(created.imageRepository) : undefined;
          const pushed = await ports.image.push({
            localRef: localRef!,
            ...(builtImageId ? { imageId: builtImageId } : {}),
            remoteRef,
            auth: { username: 'cli', password: session.token, serveraddress: host, ...(registrytoken ? { registrytoken } : {}) },
            signal,
          });
          reached.image.sent = true;
          // The pushed name leaves the local engine while the deploy is finalized.
          if (pushed.untagged) runner.trail(pushed.untagged);
          return pushed;
        })
      : Promise.resolve(undefined);
    const uploadTask = bundle
      ? runner.run('upload', async () => {
          if (!created.dagsUploadUrl) throw new UserError('The platform did not give a DAG upload URL for a Deployment with DAG deploys enabled.');
          const uploaded = await ports.bundle.upload({ sasUrl: created.dagsUploadUrl, data: bundle.data, signal, deploymentId: deployment.id });
          reached.dags.sent = true;
          return uploaded;
        })
      : Promise.resolve(undefined);
    if (type === 'IMAGE_ONLY' && dagDeploy) notice('Image Deploy only. Skipping deploying DAG...');
    const [pushed, uploaded] = await settleBoth(pushTask, uploadTask);

    const finalized = await runner.run('finalize', async () => {
      reached.activation.state = 'unknown';
      const answer = await controlPlane.finalizeDeploy(
        session.organizationId,
        deployment.id,
        created.id,
        dagDeploy ? { dagTarballVersion: uploaded?.versionId ?? '' } : {},
        signal,
      );
      reached.activation.state = 'done';
      return answer;
    });
    if (finalized.dagTarballVersion) notice(`Deployed DAG bundle:  ${finalized.dagTarballVersion}`);
    if (shipsImage && created.imageTag) notice(`Deployed Image Tag:  ${created.imageTag}`);

    let status = 'DEPLOYING';
    if (req.wait) {
      const outcome = await runner.run('wait', () =>
        pollUntilHealthy(() => controlPlane.getDeployment(session.organizationId, deployment.id, signal), {
          timeoutMs: req.wait!.timeoutMs,
          intervalMs: req.wait!.intervalMs,
          expect: { imageTag: shipsImage ? created.imageTag : undefined, dagTarballVersion: uploaded?.versionId },
          previous: { imageTag: deployment.imageTag, dagTarballVersion: deployment.dagTarballVersion },
          signal,
          onStatus: (s) => ports.emit({ type: 'progress', phase: 'wait', message: s }),
        }),
      );
      status = outcome.status;
      notice(`Deployment ${deployment.name} is now healthy`);
    }

    return {
      deploymentId: deployment.id,
      deploymentName: deployment.name,
      workspaceId: deployment.workspaceId,
      deployId: created.id,
      type,
      ...(shipsImage ? { image: { repository: created.imageRepository, tag: created.imageTag, digest: pushed?.digest, runtimeVersion } } : {}),
      ...(uploaded && bundle ? { dags: { version: uploaded.versionId, bytes: bundle.bytes, dagFiles: bundle.dagFileCount } } : {}),
      status,
      timings: runner.timings,
      ...(plan ? { plan } : {}),
    };
  }
}
