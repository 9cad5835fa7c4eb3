/**
 * What every deploy shares, Astro or Software: the request fields both read from the same flags, the ports of the
 * local machine (prompts, parse and tests, image build and push, the DAG bundle), and the local steps built on
 * them — the DAG bundle and its empty-folder confirmation, the parse and pytest gates, the image build or the
 * prebuilt image. The wings (astro/, software/) add only what differs: the target, the API calls, the refusals.
 */
import path from 'node:path';
import { NeedsInputError, UserError } from '../../errors.js';
import { escapeLine } from '../../ui/escape.js';
import type { GeneratedBundleFile } from '../../bundle/monitoring.js';
import type { DeployEvent, EarlyPhase, PhaseRunner } from './phases.js';

/** The part of a deploy request that Astro and Software deploys read from the same flags and settings. */
export interface CommonDeployRequest {
  projectDir: string;
  deploymentId?: string;
  deploymentName?: string;
  workspaceFlag?: string;
  savedDeploymentId?: string;
  prompt: boolean;
  save: boolean;
  /** API token sessions and `auto_select` take the only Deployment without asking. */
  autoSelect: boolean;
  /** --dags or --image; `full` ships what the Deployment takes. */
  mode: 'full' | 'dags' | 'image';
  /** --image-name: a local image instead of a build. */
  imageName?: string;
  dagsPath?: string;
  force: boolean;
  /** skip_parse config or ASTRONOMER_SKIP_PARSE. */
  skipParse: boolean;
  pytest?: { file?: string };
  envFile?: string;
  description?: string;
  buildSecrets: string[];
  showWarnings: boolean;
  /** --no-cache: build without the engine's build cache. */
  noCache?: boolean;
  /** false for --no-dags-base-dir: bundle entries without the `dags/` prefix. */
  dagsBaseDir?: boolean;
}

export interface ParseOutcome {
  ok: boolean;
  failures: { path: string; message: string }[];
}

/** A built or prebuilt image as the deploy sees it. */
export interface LocalImage {
  /** The image's Runtime version label, when it has one. */
  runtimeVersion?: string;
  labels: Record<string, string>;
  /** The image this build made, which the local name may no longer point at when deploys run side by side. */
  imageId?: string;
}

export interface DagBundle {
  data: Buffer;
  bytes: number;
  dagFileCount: number;
  /** Files and symlinks in the bundle, DAG files or not. */
  fileCount?: number;
  /** The content digest, when the packer computed it (else the plan reads the tar back). */
  contentDigest?: string;
  /** The bundle kept from an earlier deploy of the folder in this same state (bundle/bundle-cache.ts). */
  reused?: boolean;
}

export interface RegistryCredentials {
  username: string;
  password: string;
  serveraddress: string;
  identitytoken?: string;
  /** A bearer token for this push (image/engine/messages.ts RegistryAuth); the credentials above if it is refused. */
  registrytoken?: string;
}

/** The platform-independent ports of a deploy. */
export interface LocalDeployPorts {
  /** Numbered choice on a terminal; throws NeedsInputError without one. */
  choose: <T>(title: string, choices: { label: string; value: T }[], flags: string[]) => Promise<T>;
  confirm: (question: string, flags: string[]) => Promise<boolean>;
  emit: (event: DeployEvent) => void;
  /** Where DAGs can be parsed and tested: on the host (a Python with Airflow was found) or only inside an image. */
  checkLocation: () => Promise<'host' | 'image'>;
  /** `image`: parse inside this image (the built one); else on the host, or in the Dockerfile's base image. */
  parse: (input: { projectDir: string; dagsDir: string; envFile?: string; image?: string; signal: AbortSignal }) => Promise<ParseOutcome>;
  pytest: (input: {
    projectDir: string;
    testPath?: string;
    envFile?: string;
    image?: string;
    signal: AbortSignal;
  }) => Promise<{ passed: boolean; exitCode: number }>;
  image: {
    build: (input: {
      projectDir: string;
      localRef: string;
      excludeDags: boolean;
      labels: Record<string, string>;
      buildSecrets: string[];
      noCache: boolean;
      signal: AbortSignal;
    }) => Promise<LocalImage>;
    /** The image exists locally and is linux/amd64; its labels are returned as they are (each platform has its own rule for them). */
    inspectPrebuilt: (ref: string) => Promise<LocalImage>;
    /**
     * The repository this deploy will likely push to, named while the image builds: how far its registry is gets
     * measured then, for the push to choose its way there (image/registry-relay.ts).
     */
    preparePush?: (repository: string) => void;
    /** `untagged`: the pushed name's removal from the local engine, still under way (see image/push.ts); it never rejects. */
    push: (input: {
      localRef: string;
      /** The id of the image this deploy built, when it built one: a registry that has it already only gets the tag. */
      imageId?: string;
      remoteRef: string;
      auth: RegistryCredentials;
      signal: AbortSignal;
    }) => Promise<{ digest?: string; untagged?: Promise<void> }>;
  };
  bundle: {
    /**
     * `prefix`: the folder every entry sits in (`dags`, or '' for --no-dags-base-dir); `generated`: files the bundle
     * carries beyond the folder's (the Hybrid monitoring DAG); `fresh` (--no-cache): pack the files even if a bundle
     * of them in this state was kept.
     */
    create: (input: { sourceDir: string; prefix: string; generated?: GeneratedBundleFile[]; fresh?: boolean; signal: AbortSignal }) => Promise<DagBundle>;
  };
  /** Content digests and git history for the deploy plan; without it every deploy ships as asked (no plan). */
  plan?: PlanPorts;
  saveDeploymentId: (id: string) => Promise<void>;
  signal: AbortSignal;
  now?: () => number;
}

/** What the plan reads on this machine. */
export interface PlanPorts {
  /** Starts the slow reads (the engine's base image) early, so they overlap the API calls before the plan. */
  prepare?: () => void;
  /** The image inputs digest (build context after .dockerignore, build args, secrets' ids, base image) and the context's size. */
  imageInputs: (input: {
    excludeDags: boolean;
    buildSecrets: string[];
    signal: AbortSignal;
  }) => Promise<{ digest: string; contextBytes: number; contextFiles: number; baseImage?: string }>;
  /** The DAG bundle's content digest (names, bytes and executable bits; not mtimes). */
  dagsDigest: (bundle: DagBundle) => Promise<string>;
  /** Project files that differ from `commit` (relative to the project); undefined when git cannot tell. */
  changedFiles: (commit: string) => Promise<string[] | undefined>;
}

export const SKIP_PARSE_NOTICE = 'Skipping parsing dags due to skip parse being set to true in either the config.yaml or local environment variables';

export interface LocalSteps {
  dagsDir: string;
  /** Packs the DAGs (a phase), and asks before shipping an empty bundle. */
  bundle(generated?: GeneratedBundleFile[]): Promise<DagBundle>;
  /** Packs the DAGs (a phase) without asking: for the plan, which may ship nothing. */
  pack(generated?: GeneratedBundleFile[]): Promise<DagBundle>;
  /** Starts packing the DAGs (without generated files) before the deploy knows it ships them (an early phase: adopt or drop it). */
  packEarly(): EarlyPhase<DagBundle>;
  /** Asks before shipping an empty bundle (no DAG files). */
  confirmBundle(bundle: DagBundle): Promise<DagBundle>;
  /** Whether DAGs that ship get parsed, with the notice when a setting skips it. A prebuilt image's DAGs are its own. */
  shouldParse(shipsDags: boolean): boolean;
  /** Where the gates run: on the host, or only inside an image (no host Python with Airflow). */
  checkLocation(parse: boolean): Promise<'host' | 'image'>;
  /** The parse and pytest gates, on the host or inside `image`. */
  checks(parse: boolean, image?: string): Promise<void>;
  /** Builds the project image (a phase), or inspects the prebuilt one. */
  image(input: ImageBuildInput): Promise<LocalImage>;
  /**
   * Builds the project image before the deploy knows it ships one (a plan still waiting on a registry read): adopted
   * when the deploy then builds exactly this input, else dropped (aborted if still running; nothing was sent).
   */
  imageEarly(input: ImageBuildInput): EarlyImage;
}

export interface ImageBuildInput {
  localRef: string;
  excludeDags: boolean;
  labels: Record<string, string>;
}

export interface EarlyImage {
  input: ImageBuildInput;
  phase: EarlyPhase<LocalImage>;
}

/** Whether two builds would make the same image (same name, context and labels). */
export function sameBuild(a: ImageBuildInput, b: ImageBuildInput): boolean {
  const labels = (l: Record<string, string>) => JSON.stringify(Object.entries(l).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return a.localRef === b.localRef && a.excludeDags === b.excludeDags && labels(a.labels) === labels(b.labels);
}

export function localSteps(
  req: CommonDeployRequest,
  ports: LocalDeployPorts,
  runner: PhaseRunner,
  options: { emptyDagsCancelMessage: string; prebuiltNotice: string },
): LocalSteps {
  const { signal } = ports;
  const dagsDir = path.resolve(req.projectDir, req.dagsPath ?? 'dags');
  const notice = (message: string) => ports.emit({ type: 'notice', message });
  const warn = (message: string) => ports.emit({ type: 'warning', message });
  const prefix = req.dagsBaseDir === false ? '' : 'dags';
  const fresh = req.noCache === true;
  const pack = async (generated?: GeneratedBundleFile[]): Promise<DagBundle> =>
    runner.run('bundle', () => ports.bundle.create({ sourceDir: dagsDir, prefix, fresh, signal, ...(generated?.length ? { generated } : {}) }));
  const confirmBundle = async (bundle: DagBundle): Promise<DagBundle> => {
    if (bundle.reused) notice('No file in the DAGs folder changed since this machine bundled it: shipping that bundle.');
    if (bundle.dagFileCount === 0) {
      await confirmEmptyDags({ force: req.force, showWarnings: req.showWarnings, cancelMessage: options.emptyDagsCancelMessage }, ports.confirm);
    }
    return bundle;
  };

  return {
    dagsDir,
    bundle: async (generated) => confirmBundle(await pack(generated)),
    pack,
    packEarly: () => runner.early('bundle', (early) => ports.bundle.create({ sourceDir: dagsDir, prefix, fresh, signal: early })),
    confirmBundle,
    shouldParse(shipsDags) {
      if (!shipsDags) return false;
      if (req.skipParse) notice(SKIP_PARSE_NOTICE);
      return !req.skipParse;
    },
    async checkLocation(parse) {
      return parse || req.pytest ? ports.checkLocation() : 'host';
    },
    async checks(parse, image) {
      const { projectDir, envFile } = req;
      if (parse) {
        const outcome = await runner.run('parse', () => ports.parse({ projectDir, dagsDir, envFile, image, signal }));
        // A file name may hold a newline or escapes: one line each, so it cannot forge a line of astro's output.
        for (const f of outcome.failures) warn(`${escapeLine(f.path)}: ${f.message}`);
        if (!outcome.ok && !req.force) {
          throw new UserError('your local DAGs did not parse. Fix the listed errors or use `astro deploy [deployment-id] -f` to force deploy');
        }
        notice(outcome.ok ? '✔ No errors detected in your DAGs' : 'Deploying despite DAG errors because of --force.');
      }
      if (req.pytest) {
        const testPath = req.pytest.file;
        const result = await runner.run('pytest', () => ports.pytest({ projectDir, testPath, envFile, image, signal }));
        if (!result.passed) {
          throw new UserError(
            result.exitCode === 1
              ? "at least 1 pytest in your tests directory failed. Fix the issues listed or rerun the command without the '--pytest' flag to deploy"
              : `Something went wrong while Pytesting your DAGs,\nif the issue persists rerun the command without the '--pytest' flag to deploy: pytest exited with ${result.exitCode}`,
          );
        }
        notice('\nAll Pytests passed!');
      }
    },
    imageEarly(input) {
      const { localRef, excludeDags, labels } = input;
      const phase = runner.early('build', (early) =>
        ports.image.build({
          projectDir: req.projectDir,
          localRef,
          excludeDags,
          labels,
          buildSecrets: req.buildSecrets,
          noCache: req.noCache ?? false,
          signal: early,
        }),
      );
      return { input, phase };
    },
    async image({ localRef, excludeDags, labels }) {
      if (req.imageName) {
        notice(options.prebuiltNotice);
        const ref = req.imageName;
        return runner.run('build', () => ports.image.inspectPrebuilt(ref), 'Checking the prebuilt image');
      }
      return runner.run('build', () =>
        ports.image.build({ projectDir: req.projectDir, localRef, excludeDags, labels, buildSecrets: req.buildSecrets, noCache: req.noCache ?? false, signal }),
      );
    },
  };
}

/** Asks before a deploy with no DAG files; without a terminal, --force is the answer. */
export async function confirmEmptyDags(
  options: { force: boolean; showWarnings: boolean; cancelMessage: string },
  confirm: LocalDeployPorts['confirm'],
): Promise<void> {
  if (options.force || !options.showWarnings) return;
  let yes: boolean;
  try {
    yes = await confirm('Warning: No DAGs found. This will delete any existing DAGs. Are you sure you want to deploy?', ['--force']);
  } catch (error) {
    if (error instanceof NeedsInputError) {
      throw new NeedsInputError("No DAGs found: this deploy would delete the Deployment's existing DAGs.", ['--force'], {
        nextStep: 'Add DAG files to the dags folder, or pass --force to deploy an empty DAG bundle on purpose.',
      });
    }
    throw error;
  }
  if (!yes) throw new UserError(options.cancelMessage);
}
