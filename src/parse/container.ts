/**
 * Image mode: a throwaway container of the project image with no network, a memory and process limit, no
 * capabilities, and the project's directories mounted read-only where Astronomer's parse container gets copies of
 * them. The container is removed afterwards, whatever happens.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { demuxStream, type ImageEngine } from '../image/engine.js';

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

export function projectBinds(projectDir: string): string[] {
  return PROJECT_DIRS.filter((dir) => fs.existsSync(path.join(projectDir, dir))).map(
    (dir) => `${path.join(projectDir, dir)}:${CONTAINER_PROJECT_ROOT}/${dir}:ro`,
  );
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
  const rel = path.relative(projectDir, hostPath);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const top = rel.split(path.sep)[0];
  if (!PROJECT_DIRS.includes(top as (typeof PROJECT_DIRS)[number])) return null;
  return `${CONTAINER_PROJECT_ROOT}/${rel.split(path.sep).join('/')}`;
}

export async function imageId(docker: DockerClient, image: string): Promise<string> {
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
  return info.id;
}

export async function runSandboxedContainer(run: ContainerRun): Promise<ContainerExit> {
  const container = await run.docker.createContainer({
    Image: run.image,
    Cmd: run.cmd,
    Env: Object.entries(run.env).map(([name, value]) => `${name}=${value}`),
    WorkingDir: CONTAINER_PROJECT_ROOT,
    Labels: { 'dev.astro-deploy-cli.sandbox': 'parse' },
    HostConfig: {
      NetworkMode: 'none',
      Memory: run.memoryBytes,
      MemorySwap: run.memoryBytes,
      PidsLimit: 1024,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Binds: [...projectBinds(run.projectDir), ...(run.binds ?? [])],
    },
  });
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
    const stream = await container.attach();
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
    await container.start();
    if (run.timeLimitMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, run.timeLimitMs);
    }
    const result = await container.wait();
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2000))]);
    return { exitCode: result.StatusCode, aborted, timedOut };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    run.signal?.removeEventListener('abort', onAbort);
    await container.remove({ force: true }).catch(() => undefined);
  }
}
