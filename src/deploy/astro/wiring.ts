/**
 * The real ports behind the Astro wing of `astro deploy`: the Astro API, Azure Blob and the Runtime rules, on top
 * of the shared local ports. Heavy modules are imported here, lazily, so `astro --help` never loads them.
 */
import path from 'node:path';
import { UserError } from '../../errors.js';
import type { AstroSession } from '../../auth/session.js';
import { createAstroClient } from '../../platform/astro/client.js';
import type { Deployment } from '../../platform/astro/schemas.js';
import type { RegistryChallenge } from '../../image/registry.js';
import { cliVersion } from '../../version.js';
import { once } from '../../util/once.js';
import { rememberedOrigins } from '../../util/remembered-origins.js';
import { readGitInfo } from '../kernel/git.js';
import { createLocalPorts, type LocalWiringInput } from '../kernel/wiring.js';
import type { DeployPorts } from './deploy.js';

export interface WiringInput extends LocalWiringInput {
  session: AstroSession;
}

/** The Runtime updates feed: the local platform serves one for `localhost`; elsewhere Astronomer's, unless overridden. */
function feedUrl(input: WiringInput): string | undefined {
  if (input.env.updatesUrl) return input.env.updatesUrl;
  if (input.session.domain === 'localhost')
    return `${(input.config.get('local.core') ?? 'http://localhost:8888').replace(/\/$/, '')}/updates/astronomer-runtime`;
  return undefined;
}

export function createDeployPorts(input: WiringInput): DeployPorts {
  const { session, env, out, projectDir, signal, emit } = input;
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
    const { loadRuntimeFeed, DEFAULT_RUNTIME_FEED_URL } = await import('../../image/runtime/feed.js');
    const loaded = await loadRuntimeFeed({ url: url ?? DEFAULT_RUNTIME_FEED_URL, cacheDir: env.cacheDir, signal, onDebug: (m: string) => out.debug(m) });
    return loaded.feed;
  });
  const runtimeOf = (deployment: Deployment, supported: string[]) => ({ runtimeVersion: deployment.runtimeVersion, supportedVersions: supported });
  /** Per Deployment: where its last bundle went, and where its registry was read (util/remembered-origins.ts). */
  const uploadOrigins = rememberedOrigins(path.join(env.cacheDir, 'upload-origins.json'), (error) =>
    out.debug(`No early connection to the blob store: ${String(error)}`),
  );
  const registryOrigins = rememberedOrigins(path.join(env.cacheDir, 'registry-origins.json'));
  // The registry's client and the challenges its realms sent, loaded by the image path only.
  const registryReads = async () => {
    const [registry, { rememberedChallenges }] = await Promise.all([import('../../image/registry.js'), import('../../image/registry-challenges.js')]);
    return { registry, challenges: rememberedChallenges(path.join(env.cacheDir, 'registry-challenges.json')) };
  };

  return {
    session,
    controlPlane,
    ...local,
    emit,

    bundle: {
      ...local.bundle,
      upload: async ({ sasUrl, data, deploymentId }) => {
        const signature = new URL(sasUrl).searchParams.get('sig');
        if (signature) out.addSecret(signature);
        const { uploadDagBundle } = await import('../../bundle/upload.js');
        const uploaded = await uploadDagBundle({
          sasUrl,
          data,
          signal,
          onProgress: (e) => {
            if (e.type === 'progress') emit({ type: 'progress', phase: 'upload', bytesDone: e.loadedBytes, bytesTotal: e.totalBytes });
            if (e.type === 'retry') emit({ type: 'warning', message: `Upload: ${e.reason}; retrying` });
          },
        });
        if (deploymentId !== undefined) await uploadOrigins.remember(deploymentId, sasUrl);
        return uploaded;
      },
      prepareUpload: (deploymentId) => uploadOrigins.prepare(deploymentId),
    },

    runtime: {
      preflight: async ({ deployment, supported }) => {
        const [{ loadDockerfile }, { preflightRuntimeImage }] = await Promise.all([
          import('../../image/runtime/dockerfile.js'),
          import('../../image/runtime/preflight.js'),
        ]);
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
        const { checkBuiltRuntimeImage } = await import('../../image/runtime/preflight.js');
        const checked = checkBuiltRuntimeImage({
          label,
          source: imageName ? { imageName } : { fromImage: fromImage ?? "the Dockerfile's base image" },
          deployment: runtimeOf(deployment, supported),
          feed: await feed(),
          expectedVersion,
        });
        return { notices: checked.notices.map((n) => n.message), version: checked.version };
      },
    },

    git: (dir) => readGitInfo(dir, env.raw),

    registry: {
      inspect: async (repository, tag, registrySignal, deploymentId) => {
        const { registry, challenges } = await registryReads();
        const host = registry.registryHost(repository);
        let challenged: RegistryChallenge | undefined;
        const image = await registry.inspectPushedImage({
          repository,
          tag,
          auth: { username: 'cli', password: session.token },
          signal: registrySignal,
          challenge: await challenges.read(host),
          onChallenge: (challenge) => (challenged = challenge),
        });
        if (challenged) await challenges.remember(host, challenged);
        await registryOrigins.remember(deploymentId, registry.registryOrigin(repository));
        return image;
      },
      pushToken: async (repository, tokenSignal) => {
        const { registry, challenges } = await registryReads();
        const challenge = await challenges.read(registry.registryHost(repository));
        return registry.requestPushToken({ repository, auth: { username: 'cli', password: session.token }, challenge, signal: tokenSignal });
      },
      prepare: (deploymentId) => registryOrigins.prepare(deploymentId),
    },
  };
}
