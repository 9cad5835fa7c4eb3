/**
 * Builds the project image for an Astro Deployment: linux/amd64, tagged with the local deploy name, labelled with
 * the deploy description and git commit, from a build context filtered in memory (context.ts).
 *
 * The engine's BuildKit builder does the work where the engine has it (Docker 18.09 and later), with a client session
 * serving the build secrets when there are any (engine.ts); the classic builder on Podman, on older engines, with
 * DOCKER_BUILDKIT=0, or when the engine refuses a BuildKit build. BuildKit writes labels into the image's config,
 * where the classic builder runs a container and commits an image for each label (about 75 ms each here). A project
 * whose .dockerignore lists its Dockerfile or itself is built classic: BuildKit fed a tar would copy them in.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { AstroError, UserError } from '../errors.js';
import { interruptedBy } from '../util/retry.js';
import { RUNTIME_VERSION_LABEL } from './labels.js';
import { contextStream, resolveBuildContext, type ContextSnapshot } from './context.js';
import type { BuildSecret, Builder, EngineBuildRequest, ImageEngine } from './engine.js';
import { EngineHttpError } from './engine/transport.js';

export const DEPLOY_PLATFORM = 'linux/amd64';
/** The message Astro CLI users know for a failed build. */
export const BUILD_FAILED_MESSAGE = 'an error was encountered while building the image, see the build logs for details';

export type BuildProgressEvent =
  | { type: 'build-start'; tag: string; platform: string; builder: 'classic' | 'buildkit' }
  /** A Dockerfile instruction started (`Step 2/5 : RUN …` / `[2/5] RUN …`). */
  | { type: 'build-step'; index: number; total: number; instruction: string; cached: boolean }
  /** One line of build output (instruction output included). */
  | { type: 'build-log'; line: string }
  | { type: 'build-done'; tag: string; imageId: string };

export interface BuildProjectImageOptions extends Pick<EngineBuildRequest, 'buildArgs' | 'noCache' | 'pull' | 'secrets' | 'signal'> {
  /** The builder the user asked for (DOCKER_BUILDKIT); else the engine's best (engine.ts chooseBuilder). */
  builder?: Builder;
  projectDir: string;
  /** The local name of the image, e.g. `<deployment namespace>/airflow:latest`. */
  tag: string;
  /** Relative to projectDir; defaults to `Dockerfile`. */
  dockerfile?: string;
  /** Leave `dags/` out of the image (the Deployment has DAG-only deploys on). */
  excludeDags?: boolean;
  /** The build context as the plan already read it with the same options (see context.ts); read here otherwise. */
  context?: ContextSnapshot;
  /** Defaults to linux/amd64, the only platform Astro runs. */
  platform?: string;
  /** Labels for the image (the deploy's description and commit: see labels.ts). */
  labels?: Record<string, string>;
  onProgress?: (event: BuildProgressEvent) => void;
}

export interface BuiltImage {
  tag: string;
  imageId: string;
  labels: Record<string, string>;
  /** The image's Astro Runtime version label; undefined when the base image is not Astro Runtime. */
  runtimeVersion?: string;
}

export interface FailedStep {
  index: number;
  total: number;
  instruction: string;
}

/**
 * `Step 2/5`; `Step 6` past the Dockerfile's count: BuildKit numbers a base image's ONBUILD steps on from the FROM
 * line's number against the Dockerfile's own total (`[6/1] COPY . .`).
 */
export function stepName(step: { index: number; total: number }): string {
  return step.index <= step.total ? `Step ${step.index}/${step.total}` : `Step ${step.index}`;
}

/** A build that the engine reported as failed: names the step and keeps the last lines of output. */
export class ImageBuildError extends UserError {
  override readonly kind = 'image-build';
  readonly failedStep?: FailedStep;
  readonly engineMessage: string;
  readonly logTail: string[];

  constructor(engineMessage: string, failedStep: FailedStep | undefined, logTail: string[]) {
    const where = failedStep ? `${stepName(failedStep)} (${failedStep.instruction}) failed` : 'The build failed';
    super(BUILD_FAILED_MESSAGE, {
      nextStep: `${where}: ${engineMessage}\nFix the Dockerfile or the files it uses, then deploy again.`,
    });
    this.failedStep = failedStep;
    this.engineMessage = engineMessage;
    this.logTail = logTail;
  }
}

const LOG_TAIL_LINES = 40;
const CLASSIC_STEP = /^Step (\d+)\/(\d+) : (.*)$/;
// BuildKit names its steps `[2/5] RUN …`, or `[stage 2/5] RUN …` in multi-stage builds.
const BUILDKIT_STEP = /^\[(?:[^\]\s]+ )?(\d+)\/(\d+)\] (.*?)( \(cached\))?$/;

export function parseStepLine(line: string): { index: number; total: number; instruction: string; cached: boolean } | undefined {
  const classic = CLASSIC_STEP.exec(line);
  if (classic) return { index: Number(classic[1]), total: Number(classic[2]), instruction: classic[3]!.trim(), cached: false };
  const buildkit = BUILDKIT_STEP.exec(line);
  if (buildkit) return { index: Number(buildkit[1]), total: Number(buildkit[2]), instruction: buildkit[3]!.trim(), cached: buildkit[4] !== undefined };
  return undefined;
}

/** Labels every deploy image carries; empty values are left out. */

function interrupted(signal: AbortSignal): AstroError {
  return interruptedBy(signal, 'The image build was interrupted.');
}

/**
 * Builds the project image and returns its id and labels. Output arrives as `build-log` events; a failed build
 * throws ImageBuildError naming the failing step. Aborting the signal cancels the request to the engine, which
 * stops the build.
 */
export async function buildProjectImage(engine: ImageEngine, options: BuildProjectImageOptions): Promise<BuiltImage> {
  const emit = options.onProgress ?? (() => undefined);
  const platform = options.platform ?? DEPLOY_PLATFORM;
  const secrets = options.secrets ?? [];
  const { signal } = options;
  if (signal?.aborted) throw interrupted(signal);

  const dockerfile = options.dockerfile ?? 'Dockerfile';
  const snapshot = await resolveBuildContext(options.projectDir, { excludeDags: options.excludeDags, dockerfile }, options.context);
  let context = contextStream(snapshot);
  // A Dockerfile or .dockerignore that .dockerignore lists is sent for the builder to read; the classic builder
  // leaves it out of the image as the Docker CLI's BuildKit does, but BuildKit fed a tar would copy it in.
  const classicOnly = secrets.length === 0 && snapshot.keptForBuilder.length > 0;
  let builder: Builder = secrets.length > 0 ? 'buildkit' : classicOnly ? 'classic' : await engine.chooseBuilder(options.builder, signal);

  emit({ type: 'build-start', tag: options.tag, platform, builder });
  const tail: string[] = [];
  let step: FailedStep | undefined;
  let pending = '';
  let failure: string | undefined;
  // The engine names the image it built; the tag may meanwhile name another build's (two deploys of one Deployment).
  let builtId: string | undefined;

  const onLine = (line: string) => {
    const parsed = parseStepLine(line);
    if (parsed) {
      step = { index: parsed.index, total: parsed.total, instruction: parsed.instruction };
      emit({ type: 'build-step', ...parsed });
    }
    tail.push(line);
    if (tail.length > LOG_TAIL_LINES) tail.shift();
    emit({ type: 'build-log', line });
  };

  for (;;) {
    let answered = false;
    try {
      for await (const message of engine.build({
        context,
        tag: options.tag,
        dockerfile: dockerfile.split(path.sep).join('/'),
        platform,
        labels: options.labels ?? {},
        buildArgs: options.buildArgs,
        noCache: options.noCache,
        pull: options.pull,
        secrets,
        builder,
        signal,
      })) {
        answered = true;
        if (message.stream !== undefined) {
          pending += message.stream;
          let newline = pending.indexOf('\n');
          while (newline !== -1) {
            onLine(pending.slice(0, newline).replace(/\r$/, ''));
            pending = pending.slice(newline + 1);
            newline = pending.indexOf('\n');
          }
        }
        if (message.error !== undefined || message.errorDetail !== undefined) {
          failure = message.errorDetail?.message ?? message.error ?? 'unknown error';
        }
        const id = (message.aux as { ID?: unknown } | undefined)?.ID;
        if (typeof id === 'string' && id.startsWith('sha256:')) builtId = id;
      }
      break;
    } catch (error) {
      if (signal?.aborted) throw interrupted(signal);
      // An engine that refuses a BuildKit build nobody asked for (BuildKit off or missing): the classic builder.
      if (error instanceof EngineHttpError && !answered && builder === 'buildkit' && secrets.length === 0 && options.builder === undefined) {
        emit({ type: 'build-log', line: `The engine refused a BuildKit build (${error.message}); building with the classic builder.` });
        builder = 'classic';
        context = contextStream(snapshot);
        emit({ type: 'build-start', tag: options.tag, platform, builder });
        continue;
      }
      if (error instanceof AstroError) throw error;
      throw new UserError(`The Docker engine stopped the build: ${(error as Error).message}`, { cause: error });
    }
  }
  if (pending !== '') onLine(pending);

  if (failure !== undefined) throw new ImageBuildError(failure.trim(), step, [...tail]);
  if (signal?.aborted) throw interrupted(signal);

  const details = await engine.inspect(builtId ?? options.tag);
  if (!details) throw new ImageBuildError('the build finished but the engine has no image tagged ' + options.tag, step, [...tail]);
  emit({ type: 'build-done', tag: options.tag, imageId: details.id });
  const runtimeVersion = details.labels[RUNTIME_VERSION_LABEL];
  return { tag: options.tag, imageId: details.id, labels: details.labels, ...(runtimeVersion ? { runtimeVersion } : {}) };
}

// -------------------------------------------------------------------------------------------------------------
// `--build-secrets` specs, as Docker writes them: `id=<id>[,src=<path>|,env=<VAR>][,type=file|env]`.

export type BuildSecretSource = { kind: 'file'; path: string } | { kind: 'env'; name: string };

export interface BuildSecretSpec {
  id: string;
  source: BuildSecretSource;
}

export function parseBuildSecretSpec(spec: string): BuildSecretSpec {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UserError(`Invalid build secret '${spec}': expected key=value pairs such as id=mysecret,src=./secret.txt.`);
    const key = part.slice(0, eq).trim().toLowerCase();
    const value = part.slice(eq + 1).trim();
    if (!['id', 'src', 'source', 'env', 'type', 'required'].includes(key)) {
      throw new UserError(`Invalid build secret '${spec}': unknown key '${key}' (expected id, src, env or type).`);
    }
    fields.set(key === 'source' ? 'src' : key, value);
  }
  const type = fields.get('type');
  if (type !== undefined && type !== 'file' && type !== 'env') {
    throw new UserError(`Invalid build secret '${spec}': type must be file or env.`);
  }
  const src = fields.get('src');
  const env = fields.get('env');
  const id = fields.get('id') ?? (type === 'env' ? env : undefined) ?? (src !== undefined ? path.basename(src) : undefined);
  if (!id) throw new UserError(`Invalid build secret '${spec}': an id is required (id=<name>).`);
  if (type === 'env' || (env !== undefined && src === undefined)) return { id, source: { kind: 'env', name: env ?? src ?? id } };
  // Docker reads an environment variable named like the id when neither a file nor a variable is named.
  if (src === undefined) return { id, source: type === 'file' ? { kind: 'file', path: id } : { kind: 'env', name: id } };
  return { id, source: { kind: 'file', path: src } };
}

/** Reads the secrets' values: files relative to `cwd`, variables from the `env` the caller passes in. */
export async function resolveBuildSecrets(
  specs: readonly string[],
  options: { cwd: string; env: Readonly<Record<string, string | undefined>> },
): Promise<BuildSecret[]> {
  const secrets: BuildSecret[] = [];
  for (const spec of specs) {
    const parsed = parseBuildSecretSpec(spec);
    if (parsed.source.kind === 'env') {
      const value = options.env[parsed.source.name];
      if (value === undefined) {
        throw new UserError(`Build secret '${parsed.id}' reads the environment variable ${parsed.source.name}, which is not set.`);
      }
      secrets.push({ id: parsed.id, data: Buffer.from(value, 'utf8') });
      continue;
    }
    const file = path.resolve(options.cwd, parsed.source.path);
    try {
      secrets.push({ id: parsed.id, data: await fs.readFile(file) });
    } catch (error) {
      throw new UserError(`Cannot read build secret '${parsed.id}' from ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`, {
        cause: error,
      });
    }
  }
  return secrets;
}
