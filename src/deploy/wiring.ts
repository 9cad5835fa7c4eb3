/**
 * The real ports behind `astro deploy`: the Astro API, the Docker Engine, Azure Blob, the parse sandbox and the
 * Runtime rules. Heavy modules are imported here, lazily, so `astro --help` never loads them.
 */
import path from 'node:path';
import { UserError } from '../errors.js';
import type { AstroConfig } from '../config/store.js';
import type { AstroEnv } from '../env.js';
import type { AstroSession } from '../auth/session.js';
import { createAstroClient } from '../platform/astro/client.js';
import type { Deployment } from '../platform/astro/schemas.js';
import { cliVersion } from '../version.js';
import type { Output } from '../ui/output.js';
import { confirm, select } from '../ui/prompt.js';
import { readGitInfo } from './git.js';
import type { DeployEvent, DeployPorts, ParseOutcome } from './deploy.js';

export interface WiringInput {
  session: AstroSession;
  config: AstroConfig;
  env: AstroEnv;
  out: Output;
  projectDir: string;
  signal: AbortSignal;
  emit: (event: DeployEvent) => void;
}

/** The Runtime updates feed: the local platform serves one for `localhost`; elsewhere Astronomer's, unless overridden. */
function feedUrl(input: WiringInput): string | undefined {
  if (input.env.updatesUrl) return input.env.updatesUrl;
  if (input.session.domain === 'localhost') return `${(input.config.get('local.core') ?? 'http://localhost:8888').replace(/\/$/, '')}/updates/astronomer-runtime`;
  return undefined;
}

/** What the local ports need: no session, so the Software deploy uses them too. */
export type LocalWiringInput = Omit<WiringInput, 'session'>;

/** A built or prebuilt image as the deploy services see it. */
export interface LocalImage {
  runtimeVersion?: string;
  labels: Record<string, string>;
}

/** The platform-independent ports of a deploy: prompts, parse and tests, image build and push, the DAG bundle. */
export interface LocalDeployPorts {
  choose: DeployPorts['choose'];
  confirm: DeployPorts['confirm'];
  checkLocation: DeployPorts['checkLocation'];
  parse: DeployPorts['parse'];
  pytest: DeployPorts['pytest'];
  image: {
    build: (input: Parameters<DeployPorts['image']['build']>[0]) => Promise<LocalImage>;
    inspectPrebuilt: (ref: string) => Promise<LocalImage>;
    push: DeployPorts['image']['push'];
  };
  bundle: Pick<DeployPorts['bundle'], 'create'>;
}

export function createDeployPorts(input: WiringInput): DeployPorts {
  const { session, config, env, out, projectDir, signal, emit } = input;
  const controlPlane = createAstroClient({
    baseUrl: session.restBaseUrl,
    token: () => session.token,
    clientIdentifier: env.clientIdentifier,
    clientVersion: env.deployActionVersion ?? cliVersion(),
    onRetry: ({ attempt, delayMs, reason }) => out.debug(`Astro API: ${reason}; retry ${attempt} in ${delayMs} ms`),
  });
  const local = createLocalPorts(input);
  const feed = once(async () => {
    const url = feedUrl(input);
    const { loadRuntimeFeed, DEFAULT_RUNTIME_FEED_URL } = await import('../image/runtime/feed.js');
    const loaded = await loadRuntimeFeed({ url: url ?? DEFAULT_RUNTIME_FEED_URL, cacheDir: env.cacheDir, signal, onDebug: (m: string) => out.debug(m) });
    return loaded.feed;
  });
  const runtimeOf = (deployment: Deployment, supported: string[]) => ({ runtimeVersion: deployment.runtimeVersion, supportedVersions: supported });

  return {
    session,
    controlPlane,
    ...local,
    emit,

    bundle: {
      ...local.bundle,
      upload: async ({ sasUrl, data }) => {
        const signature = new URL(sasUrl).searchParams.get('sig');
        if (signature) out.addSecret(signature);
        const { uploadDagBundle } = await import('../bundle/upload.js');
        return uploadDagBundle({
          sasUrl,
          data,
          signal,
          onProgress: (e) => {
            if (e.type === 'progress') emit({ type: 'progress', phase: 'upload', bytesDone: e.loadedBytes, bytesTotal: e.totalBytes });
            if (e.type === 'retry') emit({ type: 'warning', message: `Upload: ${e.reason}; retrying` });
          },
        });
      },
    },

    runtime: {
      preflight: async ({ deployment, supported }) => {
        const [{ loadDockerfile }, { preflightRuntimeImage }] = await Promise.all([import('../image/runtime/dockerfile.js'), import('../image/runtime/preflight.js')]);
        const dockerfile = await loadDockerfile(path.join(projectDir, 'Dockerfile'), { displayPath: 'Dockerfile' }).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
            throw new UserError(`There is no Dockerfile in ${projectDir}.`, { nextStep: 'Run astro deploy from the root of your Astro project.' });
          }
          throw error;
        });
        const pre = preflightRuntimeImage({ dockerfile, feed: await feed(), deployment: runtimeOf(deployment, supported) });
        return { notices: pre.notices.map((n) => n.message), expectedVersion: pre.expectedVersion, fromImage: pre.fromImage };
      },
      checkImage: async ({ label, fromImage, imageName, deployment, supported, expectedVersion }) => {
        const { checkBuiltRuntimeImage } = await import('../image/runtime/preflight.js');
        const checked = checkBuiltRuntimeImage({
          label,
          source: imageName ? { imageName } : { fromImage: fromImage ?? 'the Dockerfile\'s base image' },
          deployment: runtimeOf(deployment, supported),
          feed: await feed(),
          expectedVersion,
        });
        return { notices: checked.notices.map((n) => n.message), version: checked.version };
      },
    },

    git: readGitInfo,
    saveDeploymentId: async (id) => {
      await config.setSetting('project.deployment', id, 'project');
      out.info(`Saved Deployment ${id} for this project (.astro/config.yaml).`);
    },
    signal,
  };
}

export function createLocalPorts(input: LocalWiringInput): LocalDeployPorts {
  const { config, env, out, projectDir, signal, emit } = input;
  const engine = once(async () => {
    const { createDockerEngine } = await import('../image/engine.js');
    const e = createDockerEngine({ socketPath: env.dockerSocket });
    await e.ping(signal);
    return e;
  });
  const dockerode = once(async () => {
    const { default: Docker } = await import('dockerode');
    return new Docker({ socketPath: env.dockerSocket });
  });
  const configuredPython = env.parsePython ?? (config.get('parse.python') || undefined);
  const hostPython = once(async () => {
    const { findInterpreter } = await import('../parse/interpreter.js');
    return findInterpreter({ projectDir, configuredPython }).then(() => true, () => false);
  });

  return {
    choose: (title, choices, flags) => select(out, title, choices, flags, signal),
    confirm: (question, flags) => confirm(out, question, flags, signal),
    checkLocation: async () => ((await hostPython()) ? 'host' : 'image'),

    parse: async ({ envFile, image }) => {
      const { runParse } = await import('../parse/runParse.js');
      const { headline } = await import('../parse/render.js');
      const report = await runParse(
        {
          projectDir,
          image: image ?? (await hostPython() ? undefined : await baseImageOf(projectDir)),
          configuredPython,
          envFile,
          hostEnv: env.raw,
          cacheDir: env.cacheDir,
          signal,
          onProgress: (e) => {
            if (e.type === 'listing') emit({ type: 'progress', phase: 'parse', message: `${e.toParse} of ${e.files} DAG files to parse` });
          },
        },
        { docker: image || !(await hostPython()) ? await dockerode() : undefined },
      );
      const outcome: ParseOutcome = {
        ok: report.summary.passed,
        failures: report.files
          .filter((f) => f.status === 'error')
          .flatMap((f) => f.errors.map((e) => ({ path: e.line ? `${e.path}:${e.line}` : e.path, message: headline(e.message) }))),
      };
      return outcome;
    },

    pytest: async ({ testPath, envFile, image }) => {
      const { runPytest } = await import('../parse/pytest.js');
      const result = await runPytest(
        {
          projectDir,
          path: testPath,
          image,
          configuredPython,
          envFile,
          hostEnv: env.raw,
          signal,
          onOutput: (chunk) => out.streams.stderr.write(out.redact(chunk)),
        },
        { docker: image ? await dockerode() : undefined },
      );
      return { passed: result.passed, exitCode: result.exitCode };
    },

    image: {
      build: async ({ localRef, excludeDags, labels, buildSecrets }) => {
        const [{ buildProjectImage, resolveBuildSecrets }, e] = await Promise.all([import('../image/build.js'), engine()]);
        const secrets = await resolveBuildSecrets(buildSecrets, { cwd: projectDir, env: env.raw });
        const built = await buildProjectImage(e, {
          projectDir,
          tag: localRef,
          excludeDags,
          labels,
          secrets,
          signal,
          onProgress: (p) => {
            if (p.type === 'build-step') emit({ type: 'progress', phase: 'build', message: `Step ${p.index}/${p.total}: ${p.instruction}` });
            if (p.type === 'build-log') out.debug(p.line);
          },
        });
        return { runtimeVersion: built.runtimeVersion, labels: built.labels, imageId: built.imageId };
      },
      inspectPrebuilt: async (ref) => {
        const [{ checkPrebuiltImage }, e] = await Promise.all([import('../image/check.js'), engine()]);
        const checked = await checkPrebuiltImage(e, ref);
        return { runtimeVersion: checked.runtimeVersion, labels: checked.labels };
      },
      push: async ({ localRef, remoteRef, auth }) => {
        const [{ pushImage }, e] = await Promise.all([import('../image/push.js'), engine()]);
        const layers = new Map<string, { current: number; total: number }>();
        const pushed = await pushImage(e, {
          localRef,
          remoteRef,
          auth,
          signal,
          onProgress: (p) => {
            if (p.type === 'push-layer' && p.total) {
              layers.set(p.id, { current: Math.min(p.current ?? 0, p.total), total: p.total });
              const done = [...layers.values()].reduce((n, l) => n + l.current, 0);
              const total = [...layers.values()].reduce((n, l) => n + l.total, 0);
              emit({ type: 'progress', phase: 'push', bytesDone: done, bytesTotal: total });
            }
            if (p.type === 'push-retry') emit({ type: 'warning', message: `Push failed (${p.reason}); retrying in ${Math.round(p.delayMs / 100) / 10}s` });
          },
        });
        return { digest: pushed.digest };
      },
    },

    bundle: {
      create: async ({ sourceDir }) => {
        const { createDagBundle } = await import('../bundle/tarball.js');
        const { preloadBlobSdk } = await import('../bundle/upload.js');
        // The Azure SDK takes a moment to load: start now, while the bundle is built and the API is called.
        void preloadBlobSdk().catch(() => undefined);
        const bundle = await createDagBundle({ sourceDir, signal });
        return { data: bundle.data, bytes: bundle.bytes, dagFileCount: bundle.dagFileCount };
      },
    },
  };
}

/** The first stage's image of the project Dockerfile: where DAG-only deploys parse when the host has no Airflow. */
async function baseImageOf(projectDir: string): Promise<string> {
  const { loadDockerfile } = await import('../image/runtime/dockerfile.js');
  const parsed = await loadDockerfile(path.join(projectDir, 'Dockerfile'), { displayPath: 'Dockerfile' });
  const image = parsed.base?.image;
  if (!image) throw new UserError('Cannot tell which image to parse the DAGs in: the Dockerfile has no FROM image.');
  return image;
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= make());
}
