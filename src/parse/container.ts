/**
 * Image mode: a throwaway container of the project image with no network, a memory and process limit, no
 * capabilities. The project's directories are mounted read-only beside the project root and copied into it when
 * the container starts, as Astronomer's parse container gets copies of them: DAG code may write into its copy, the
 * project on disk never changes. The container is removed afterwards, whatever happens.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { demuxStream, EngineHttpError, type ImageEngine } from '../image/engine.js';
import { sleep } from '../util/retry.js';
import { relativeInside } from '../util/paths.js';

/** Processes and threads a sandbox container may hold at once. */
export const CONTAINER_PIDS_LIMIT = 1024;

/** Where Runtime images keep the project (WORKDIR and AIRFLOW_HOME). */
export const CONTAINER_PROJECT_ROOT = '/usr/local/airflow';
/** The project directories Astronomer copies into its parse and pytest containers. */
export const PROJECT_DIRS = ['dags', 'plugins', 'include', 'tests', '.astro'] as const;

/** The part of the one Docker client (image/engine.ts) the sandbox uses. */
export type DockerClient = Pick<ImageEngine, 'createContainer' | 'inspect' | 'where'>;

export interface ContainerRun {
  docker: DockerClient;
  image: string;
  cmd: string[];
  env: Record<string, string>;
  projectDir: string;
  /** Extra host:container[:mode] binds. */
  binds?: string[];
  memoryBytes: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  signal?: AbortSignal;
  /** Kill the container after this long. */
  timeLimitMs?: number;
}

export interface ContainerExit {
  exitCode: number;
  aborted: boolean;
  timedOut: boolean;
}

/** Where the project's directories are mounted (read-only) before they are copied into the project root. */
const PROJECT_SOURCE = '/astro-project-source';

export function projectBinds(projectDir: string): string[] {
  return PROJECT_DIRS.filter((dir) => fs.existsSync(path.join(projectDir, dir))).map((dir) => `${path.join(projectDir, dir)}:${PROJECT_SOURCE}/${dir}:ro`);
}

/**
 * Copies the mounted directories over the image's own (which a build may have left stale), then becomes the
 * command. Exit 96 when the copy fails.
 */
export function withProjectCopy(cmd: string[]): string[] {
  const script = [
    `cd ${PROJECT_SOURCE} 2>/dev/null || exec "$@"`,
    'for d in * .[!.]*; do',
    '  [ -e "$d" ] || continue',
    `  rm -rf "${CONTAINER_PROJECT_ROOT}/$d" && cp -R "$d" "${CONTAINER_PROJECT_ROOT}/$d" || { echo "astro: cannot copy $d into ${CONTAINER_PROJECT_ROOT}" >&2; exit 96; }`,
    'done',
    `cd ${CONTAINER_PROJECT_ROOT} && exec "$@"`,
  ].join('\n');
  return ['sh', '-c', script, 'astro-sandbox', ...cmd];
}

/** Maps a path inside the container back to the project on the host (null: not a mounted project path). */
export function containerPathToHost(projectDir: string, containerPath: string): string | null {
  for (const dir of PROJECT_DIRS) {
    const prefix = `${CONTAINER_PROJECT_ROOT}/${dir}`;
    if (containerPath === prefix || containerPath.startsWith(`${prefix}/`)) {
      return path.join(projectDir, containerPath.slice(CONTAINER_PROJECT_ROOT.length + 1));
    }
  }
  return null;
}

export function hostPathToContainer(projectDir: string, hostPath: string): string | null {
  const rel = relativeInside(projectDir, hostPath);
  if (rel === undefined) return null;
  const top = rel.split(path.sep)[0];
  if (!PROJECT_DIRS.includes(top as (typeof PROJECT_DIRS)[number])) return null;
  return `${CONTAINER_PROJECT_ROOT}/${rel.split(path.sep).join('/')}`;
}

export async function imageId(docker: DockerClient, image: string): Promise<string> {
  return (await imageConfig(docker, image)).id;
}

/** The image's id and its own environment (`ENV` lines), which the container starts with. */
export async function imageConfig(docker: DockerClient, image: string): Promise<{ id: string; env: Record<string, string> }> {
  let info: Awaited<ReturnType<DockerClient['inspect']>>;
  try {
    info = await docker.inspect(image);
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`Could not inspect the image ${image} on ${docker.where}: ${(error as Error).message}`, {
      nextStep: 'Check that the Docker engine is running.',
      cause: error,
    });
  }
  if (!info) {
    throw new UserError(`The image ${image} was not found in the local Docker engine.`, {
      nextStep: 'Build it first, or pass --image-name with an image that exists locally.',
    });
  }
  return { id: info.id, env: info.env };
}

/**
 * An engine that answers but will not create or start the container (e.g. runc refusing the resource limits the
 * engine asked for): its own words, naming it, as a user error rather than a crash.
 */
function cannotStart(run: ContainerRun, error: unknown): unknown {
  if (!(error instanceof EngineHttpError)) return error;
  return new UserError(`The engine at ${run.docker.where} could not start a container of ${run.image}: ${error.message}`, {
    nextStep: `Check that this engine runs containers of that image (docker run --rm ${run.image} true), then try again.`,
    cause: error,
  });
}

export async function runSandboxedContainer(run: ContainerRun): Promise<ContainerExit> {
  const refused = (error: unknown): never => {
    throw cannotStart(run, error);
  };
  const container = await run.docker
    .createContainer({
      Image: run.image,
      Cmd: withProjectCopy(run.cmd),
      Env: Object.entries(run.env).map(([name, value]) => `${name}=${value}`),
      WorkingDir: CONTAINER_PROJECT_ROOT,
      Labels: { 'dev.astro-deploy-cli.sandbox': 'parse' },
      HostConfig: {
        NetworkMode: 'none',
        Memory: run.memoryBytes,
        MemorySwap: run.memoryBytes,
        PidsLimit: CONTAINER_PIDS_LIMIT,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        Binds: [...projectBinds(run.projectDir), ...(run.binds ?? [])],
      },
    })
    .catch(refused);
  let aborted = false;
  let timedOut = false;
  const kill = () => {
    container.kill().catch(() => undefined);
  };
  const onAbort = () => {
    aborted = true;
    kill();
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const stream = await container.attach().catch(refused);
    demuxStream(
      stream,
      (text) => run.onStdout?.(text),
      (text) => run.onStderr?.(text),
    );
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    run.signal?.addEventListener('abort', onAbort, { once: true });
    if (run.signal?.aborted) onAbort();
    await container.start().catch(refused);
    if (run.timeLimitMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, run.timeLimitMs);
    }
    const result = await container.wait();
    await Promise.race([ended, sleep(2000)]);
    return { exitCode: result.StatusCode, aborted, timedOut };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    run.signal?.removeEventListener('abort', onAbort);
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/**
 * Runtime images put the project root on PYTHONPATH (so `include.*` imports); an image that does not say
 * otherwise gets it, and the env file still wins.
 */
export function imageLayoutDefaults(env: Record<string, string>, imageEnv: Record<string, string>): Record<string, string> {
  if (env.PYTHONPATH !== undefined || imageEnv.PYTHONPATH !== undefined) return env;
  return { ...env, PYTHONPATH: CONTAINER_PROJECT_ROOT };
}
