/**
 * `astro deploy` for Astro: the plan and its execution. Everything outside (API, engine, blob store, parser,
 * prompts) comes in through ports, so the order of steps and every refusal is testable on its own.
 *
 * Order, and why it differs from Astronomer's CLI: we check and build everything locally first (parse, tests,
 * DAG bundle, image build) and only then create the deploy, so a failed build leaves no INITIALIZED deploy
 * behind and the short-lived SAS URL is used right away. Push and upload run in parallel.
 */
import path from 'node:path';
import { InterruptedError, UserError } from '../errors.js';
import type { AstroSession } from '../auth/session.js';
import type { AstroControlPlane } from '../platform/astro/client.js';
import { ApiError } from '../platform/http.js';
import type { CreateDeployRequest, Deploy, Deployment, DeployType } from '../platform/astro/schemas.js';
import { confirmEmptyDags as confirmEmpty, runProjectChecks } from './checks.js';
import { chooseDeployment, type SelectionPorts } from './select.js';
import type { GitInfo } from './git.js';
import { pollUntilHealthy } from './wait.js';

export type Phase = 'select' | 'parse' | 'pytest' | 'bundle' | 'build' | 'create' | 'push' | 'upload' | 'finalize' | 'wait';

export type DeployEvent =
  | { type: 'notice'; message: string }
  | { type: 'warning'; message: string }
  | { type: 'phase'; phase: Phase; state: 'start' | 'done' | 'skipped' | 'failed'; detail?: string }
  | { type: 'progress'; phase: Phase; message?: string; bytesDone?: number; bytesTotal?: number };

export interface DeployRequest {
  projectDir: string;
  deploymentId?: string;
  deploymentName?: string;
  workspaceFlag?: string;
  savedDeploymentId?: string;
  prompt: boolean;
  save: boolean;
  /** --dags or --image; `full` ships what the Deployment takes. */
  mode: 'full' | 'dags' | 'image';
  imageName?: string;
  dagsPath?: string;
  force: boolean;
  /** skip_parse config or ASTRONOMER_SKIP_PARSE. */
  skipParse: boolean;
  pytest?: { file?: string };
  envFile?: string;
  description?: string;
  wait?: { timeoutMs: number; intervalMs: number };
  buildSecrets: string[];
  gitMetadata: boolean;
  showWarnings: boolean;
  autoSelect: boolean;
}

export interface ParseOutcome {
  ok: boolean;
  failures: { path: string; message: string }[];
}

export interface DeployPorts {
  session: AstroSession;
  controlPlane: AstroControlPlane;
  choose: SelectionPorts['choose'];
  confirm: (question: string, flags: string[]) => Promise<boolean>;
  emit: (event: DeployEvent) => void;
  /** Where DAGs can be parsed and tested: on the host (a Python with Airflow was found) or only inside an image. */
  checkLocation: () => Promise<'host' | 'image'>;
  /** `image`: parse inside this image (the built one); else on the host, or in the Dockerfile's base image. */
  parse: (input: { projectDir: string; dagsDir: string; envFile?: string; image?: string; signal: AbortSignal }) => Promise<ParseOutcome>;
  pytest: (input: { projectDir: string; testPath?: string; envFile?: string; image?: string; signal: AbortSignal }) => Promise<{ passed: boolean; exitCode: number }>;
  image: {
    /** `imageId`: the image this build made, which the local name may no longer point at when deploys run side by side. */
    build: (input: { projectDir: string; localRef: string; excludeDags: boolean; labels: Record<string, string>; buildSecrets: string[]; signal: AbortSignal }) => Promise<{ runtimeVersion?: string; imageId?: string }>;
    inspectPrebuilt: (ref: string) => Promise<{ runtimeVersion?: string }>;
    push: (input: { localRef: string; remoteRef: string; auth: { username: string; password: string; serveraddress: string }; signal: AbortSignal }) => Promise<{ digest?: string }>;
  };
  bundle: {
    create: (input: { sourceDir: string; signal: AbortSignal }) => Promise<{ data: Buffer; bytes: number; dagFileCount: number }>;
    upload: (input: { sasUrl: string; data: Buffer; signal: AbortSignal }) => Promise<{ versionId: string }>;
  };
  runtime: {
    /** Before the build: the Dockerfile's Runtime image must be valid and suit the Deployment. Returns notices. */
    preflight: (input: { projectDir: string; deployment: Deployment; supported: string[] }) => Promise<{ notices: string[]; expectedVersion?: string; fromImage?: string }>;
    /** After the build (or for --image-name): the image's Runtime label must suit the Deployment. Returns notices. */
    checkImage: (input: { label: string | undefined; fromImage?: string; imageName?: string; deployment: Deployment; supported: string[]; expectedVersion?: string }) => Promise<{ notices: string[]; version: string }>;
  };
  git: (projectDir: string) => Promise<GitInfo>;
  saveDeploymentId: (id: string) => Promise<void>;
  signal: AbortSignal;
  now?: () => number;
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
  timings: Partial<Record<Phase, number>>;
}

/** What reached the platform so far, for the message when a deploy is interrupted or fails half-way. */
interface Reached {
  deploymentId?: string;
  deployId?: string;
  /** The finalize was sent, and whether it arrived could not be learned. */
  finalizeUnknown?: boolean;
  /** What this deploy ships, so the message only speaks of parts that were meant to go. */
  shipsImage: boolean;
  shipsBundle: boolean;
  imagePushed: boolean;
  dagsUploaded: boolean;
  finalized: boolean;
}

export async function deployToAstro(req: DeployRequest, ports: DeployPorts): Promise<DeployResult> {
  const now = ports.now ?? Date.now;
  const timings: Partial<Record<Phase, number>> = {};
  const reached: Reached = { shipsImage: false, shipsBundle: false, imagePushed: false, dagsUploaded: false, finalized: false };
  let current = 'select' as Phase;
  let shouldParse = false;

  async function phase<T>(name: Phase, work: () => Promise<T>, detail?: string): Promise<T> {
    current = name;
    throwIfAborted(ports.signal);
    const start = now();
    ports.emit({ type: 'phase', phase: name, state: 'start', detail });
    try {
      const value = await work();
      timings[name] = (timings[name] ?? 0) + (now() - start);
      ports.emit({ type: 'phase', phase: name, state: 'done' });
      return value;
    } catch (error) {
      timings[name] = (timings[name] ?? 0) + (now() - start);
      ports.emit({ type: 'phase', phase: name, state: 'failed' });
      throw error;
    }
  }

  try {
    return await run();
  } catch (error) {
    if (ports.signal.aborted) {
      // Interrupted while the finalize was on its way: only the platform knows whether it arrived. Ask it, briefly
      // (the signal that stopped us must not stop the question; a second Ctrl-C still exits at once).
      if (current === 'finalize' && reached.deployId && !reached.finalized && ports.controlPlane.getDeploy) {
        const deploy = await ports.controlPlane
          .getDeploy(ports.session.organizationId, reached.deploymentId!, reached.deployId, AbortSignal.timeout(3_000))
          .catch(() => undefined);
        if (deploy?.status !== undefined && deploy.status !== 'INITIALIZED') reached.finalized = true;
        else if (!deploy) reached.finalizeUnknown = true;
      }
      throw interrupted(ports.signal, current, reached, error);
    }
    // Half-way failures always say what reached the platform, after the failure's own advice.
    if (reached.deployId && !reached.finalized && error instanceof UserError) {
      const nextStep = error.nextStep ? `${error.nextStep}\n${describeReached(reached)}` : describeReached(reached);
      throw new UserError(error.message, { cause: error, nextStep });
    }
    // A server or network failure the retries could not get past: say that nothing was left half-done, and that
    // running the deploy again is the remedy.
    if (!reached.deployId && error instanceof ApiError && !error.nextStep && (error.status === undefined || error.status >= 500)) {
      throw new UserError(error.status === undefined ? error.message : `${error.message} (HTTP ${error.status} from the Astro API)`, {
        cause: error,
        nextStep: `${describeReached(reached)} Run astro deploy again.`,
      });
    }
    throw error;
  }

  async function run(): Promise<DeployResult> {
    const { session, controlPlane } = ports;
    const notice = (message: string) => ports.emit({ type: 'notice', message });

    const deployment = await phase('select', () =>
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
        { controlPlane, choose: ports.choose, notice, signal: ports.signal },
      ),
    );

    if (deployment.isCicdEnforced && !session.isApiToken) {
      throw new UserError(`cannot deploy since ci/cd enforcement is enabled for the deployment ${deployment.name}. Please use API Tokens instead`, {
        nextStep: 'Deploy from your CI/CD pipeline with ASTRO_API_TOKEN set.',
      });
    }
    const dagDeploy = deployment.isDagDeployEnabled;
    if ((req.mode === 'dags' || req.mode === 'image') && !dagDeploy) {
      throw new UserError(
        `DAG-only deploys are not enabled for this Deployment. Run 'astro deployment update ${deployment.id} --dag-deploy enable' to enable DAG-only deploys`,
      );
    }
    if (req.save) await ports.saveDeploymentId(deployment.id);

    // Without DAG deploys the image carries the DAGs, so a prebuilt image is a whole deploy, not an image-only one.
    const type: DeployType =
      req.mode === 'dags' ? 'DAG_ONLY' : (req.mode === 'image' || req.imageName) && dagDeploy ? 'IMAGE_ONLY' : 'IMAGE_AND_DAG';
    const shipsImage = type !== 'DAG_ONLY';
    // With DAG deploys off, DAGs travel inside the image; with them on, as a separate bundle.
    const shipsBundle = dagDeploy && type !== 'IMAGE_ONLY';
    const shipsDagsInImage = shipsImage && !dagDeploy;
    reached.shipsImage = shipsImage;
    reached.shipsBundle = shipsBundle;
    const dagsDir = path.resolve(req.projectDir, req.dagsPath ?? 'dags');

    // The DAG bundle is built first: it tells us whether there are DAGs at all, and must exist before the SAS URL does.
    const bundle = shipsBundle ? await phase('bundle', () => ports.bundle.create({ sourceDir: dagsDir, signal: ports.signal })) : undefined;
    if (bundle && bundle.dagFileCount === 0) await confirmEmptyDags();

    // Unlike Astronomer's CLI, DAG-only deploys are parsed too: our parse takes seconds, a broken DAG takes a Deployment down.
    const shipsDags = shipsBundle || shipsDagsInImage;
    // A prebuilt image (--image-name) carries its own DAGs: the project's are not what ships.
    shouldParse = shipsDags && !req.skipParse && !req.imageName;
    if (shipsDags && req.skipParse) {
      notice('Skipping parsing dags due to skip parse being set to true in either the config.yaml or local environment variables');
    }
    // On the host the checks run before anything is built; without a host Python they run in the built image.
    const location = shouldParse || req.pytest ? await ports.checkLocation() : 'host';
    const checkNow = location === 'host' || !shipsImage;
    if (checkNow) await runChecks(undefined);

    const git = req.gitMetadata && !req.imageName ? await ports.git(req.projectDir) : undefined;
    if (git?.skippedBecause && git.metadata === undefined && git.headSubject !== undefined) notice(git.skippedBecause);
    const description = req.description ?? git?.headSubject ?? '';

    let localRef: string | undefined;
    let runtimeVersion: string | undefined;
    if (shipsImage) {
      const options = await controlPlane.getDeploymentOptions(session.organizationId, ports.signal);
      const supported = options.runtimeReleases.map((r) => r.version);
      const warn = (notices: string[]) => notices.forEach((message) => ports.emit({ type: 'warning', message }));
      let label: string | undefined;
      let preflight: { expectedVersion?: string; fromImage?: string } = {};
      if (req.imageName) {
        notice('Skipping building image...');
        localRef = req.imageName;
        label = (await phase('build', () => ports.image.inspectPrebuilt(req.imageName!), 'Checking the prebuilt image')).runtimeVersion;
      } else {
        const pre = await ports.runtime.preflight({ projectDir: req.projectDir, deployment, supported });
        warn(pre.notices);
        preflight = pre;
        localRef = `${deployment.namespace || deployment.id}/airflow:latest`;
        const labels: Record<string, string> = { 'io.astronomer.deploy.revision.description': description };
        if (git?.metadata) labels['io.astronomer.deploy.revision.commit'] = git.metadata.commitSha;
        const ref = localRef;
        const built = await phase('build', () =>
          ports.image.build({ projectDir: req.projectDir, localRef: ref, excludeDags: dagDeploy, labels, buildSecrets: req.buildSecrets, signal: ports.signal }),
        );
        label = built.runtimeVersion;
        // From here on the image is named by what this build made: another deploy to the same Deployment may have
        // moved the local name to its own build meanwhile, and we must test and push ours.
        if (built.imageId) localRef = built.imageId;
      }
      const checked = await ports.runtime.checkImage({
        label,
        fromImage: preflight.fromImage,
        imageName: req.imageName,
        deployment,
        supported,
        expectedVersion: preflight.expectedVersion,
      });
      warn(checked.notices);
      runtimeVersion = checked.version;
      if (!checkNow) await runChecks(localRef);
    }

    const createBody: CreateDeployRequest = { type, description, ...(git?.metadata ? { git: git.metadata } : {}) };
    const created: Deploy = await phase('create', () => controlPlane.createDeploy(session.organizationId, deployment.id, createBody, ports.signal));
    reached.deploymentId = deployment.id;
    reached.deployId = created.id;

    const pushTask = shipsImage
      ? phase('push', async () => {
          if (!created.imageRepository || !created.imageTag) throw new UserError('The platform did not say where to push the image (no imageRepository/imageTag).');
          const remoteRef = `${created.imageRepository}:${created.imageTag}`;
          const host = created.imageRepository.split('/')[0]!;
          const pushed = await ports.image.push({
            localRef: localRef!,
            remoteRef,
            auth: { username: 'cli', password: session.token, serveraddress: host },
            signal: ports.signal,
          });
          reached.imagePushed = true;
          return pushed;
        })
      : Promise.resolve(undefined);
    const uploadTask = bundle
      ? phase('upload', async () => {
          if (!created.dagsUploadUrl) throw new UserError('The platform did not give a DAG upload URL for a Deployment with DAG deploys enabled.');
          const uploaded = await ports.bundle.upload({ sasUrl: created.dagsUploadUrl, data: bundle.data, signal: ports.signal });
          reached.dagsUploaded = true;
          return uploaded;
        })
      : Promise.resolve(undefined);
    if (type === 'IMAGE_ONLY' && dagDeploy) notice('Image Deploy only. Skipping deploying DAG...');
    const [pushed, uploaded] = await settleBoth(pushTask, uploadTask);

    const finalized = await phase('finalize', () =>
      controlPlane.finalizeDeploy(
        session.organizationId,
        deployment.id,
        created.id,
        dagDeploy ? { dagTarballVersion: uploaded?.versionId ?? '' } : {},
        ports.signal,
      ),
    );
    reached.finalized = true;
    if (finalized.dagTarballVersion) notice(`Deployed DAG bundle:  ${finalized.dagTarballVersion}`);
    if (shipsImage && created.imageTag) notice(`Deployed Image Tag:  ${created.imageTag}`);

    let status = 'DEPLOYING';
    if (req.wait) {
      const outcome = await phase('wait', () =>
        pollUntilHealthy(() => controlPlane.getDeployment(session.organizationId, deployment.id, ports.signal), {
          timeoutMs: req.wait!.timeoutMs,
          intervalMs: req.wait!.intervalMs,
          expect: { imageTag: shipsImage ? created.imageTag : undefined, dagTarballVersion: uploaded?.versionId },
          signal: ports.signal,
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
      timings,
    };
  }

  function runChecks(image: string | undefined): Promise<void> {
    return runProjectChecks(
      { projectDir: req.projectDir, dagsDir: path.resolve(req.projectDir, req.dagsPath ?? 'dags'), envFile: req.envFile, image, parse: shouldParse, pytest: req.pytest, force: req.force, signal: ports.signal },
      {
        parse: ports.parse,
        pytest: ports.pytest,
        notice: (message) => ports.emit({ type: 'notice', message }),
        warn: (message) => ports.emit({ type: 'warning', message }),
        phase: (name, work) => phase(name, work),
      },
    );
  }

  function confirmEmptyDags(): Promise<void> {
    return confirmEmpty({ force: req.force, showWarnings: req.showWarnings, cancelMessage: 'Canceling deploy...' }, ports.confirm);
  }
}

/** Waits for both; the first failure wins, but only after the other settled (no half-finished work in flight). */
async function settleBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new InterruptedError(signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
}

function describeReached(reached: Reached): string {
  if (!reached.deployId) return 'Nothing reached the platform: the Deployment still runs its previous code.';
  const parts = [
    reached.finalizeUnknown
      ? `Deploy ${reached.deployId} was created and its finalize sent, but whether the platform received it is unknown: check the Deployment before deploying again.`
      : `Deploy ${reached.deployId} was created but not finalized, so the Deployment still runs its previous code.`,
    reached.shipsImage ? (reached.imagePushed ? 'The image was pushed.' : 'The image was not pushed.') : '',
    reached.shipsBundle ? (reached.dagsUploaded ? 'The DAG bundle was uploaded but not activated.' : 'The DAG bundle was not uploaded.') : '',
    reached.finalizeUnknown ? '' : 'Run astro deploy again.',
  ];
  return parts.filter(Boolean).join(' ');
}

function interrupted(signal: AbortSignal, phase: Phase, reached: Reached, cause: unknown): InterruptedError {
  const name = signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
  const what = reached.finalized
    ? 'The deploy was finalized before the interruption; the Deployment is updating.'
    : phase === 'create' && !reached.deployId
      ? // The create request may have arrived with its answer still on the way: at most an unused deploy exists.
        'The deploy was being created; nothing was pushed, uploaded or finalized: the Deployment still runs its previous code.'
      : describeReached(reached);
  return new InterruptedError(name, `Deploy interrupted by ${name} during ${phase}. ${what}`, { cause });
}
