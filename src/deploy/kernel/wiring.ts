/**
 * The real local ports every deploy shares, Astro or Software: prompts, the parse sandbox and pytest, the Docker
 * Engine (build, inspect, push) and the DAG bundle. Heavy modules are imported lazily, so `astro --help` never
 * loads them.
 */
import path from 'node:path';
import { UserError } from '../../errors.js';
import type { AstroConfig } from '../../config/store.js';
import type { AstroEnv } from '../../env.js';
import type { Output } from '../../ui/output.js';
import { confirm, select } from '../../ui/prompt.js';
import type { ContextSnapshot } from '../../image/context.js';
import type { LocalDeployPorts, ParseOutcome, RegistryCredentials } from './local.js';
import type { DeployEvent } from './phases.js';
import { once } from '../../util/once.js';
import { RUNTIME_VERSION_LABEL } from '../../image/labels.js';

/** What the local ports need: no session, so both wings use them. */
export interface LocalWiringInput {
  config: AstroConfig;
  env: AstroEnv;
  out: Output;
  projectDir: string;
  signal: AbortSignal;
  emit: (event: DeployEvent) => void;
}

export function createLocalPorts(input: LocalWiringInput): LocalDeployPorts {
  const { config, env, out, projectDir, signal, emit } = input;
  // The one Docker client: build, push, inspect, and the parse and pytest containers.
  const engine = once(async () => {
    const { connectEngine } = await import('../../image/connect.js');
    return connectEngine(env, { containerBinary: config.get('container.binary'), signal, debug: (m) => out.debug(m) });
  });
  const configuredPython = env.parsePython ?? (config.get('parse.python') || undefined);
  const hostPython = once(async () => {
    const { findInterpreter } = await import('../../parse/interpreter.js');
    return findInterpreter({ projectDir, configuredPython }).then(
      () => true,
      () => false,
    );
  });

  // The base image as this engine has it: a moved tag (a new Runtime patch pulled) changes what a build makes. Asked
  // for as soon as a deploy starts (prepare), since the engine may take a while to answer.
  const baseImageId = once(async (): Promise<string> => {
    const base = await baseImageOf(projectDir).catch(() => undefined);
    if (!base) return 'none';
    const details = await engine()
      .then((e) => e.inspect(base))
      .catch(() => undefined);
    return details?.id ? `${base}@${details.id}` : `${base}@unknown`;
  });

  // One walk of the build context per deploy: the plan's digest and the build read the same files once, and the
  // image is built from the bytes the digest describes.
  const contextSnapshots = new Map<boolean, Promise<ContextSnapshot>>();
  const contextSnapshot = (excludeDags: boolean): Promise<ContextSnapshot> => {
    let snapshot = contextSnapshots.get(excludeDags);
    if (!snapshot) {
      snapshot = import('../../image/context.js').then(async ({ createContextFilter, readDockerignore, snapshotBuildContext }) =>
        snapshotBuildContext(projectDir, createContextFilter(await readDockerignore(projectDir), { excludeDags })),
      );
      contextSnapshots.set(excludeDags, snapshot);
    }
    return snapshot;
  };

  // What this machine pushed (image/pushed-images.ts), loaded by an image deploy only.
  // The DAG bundles made before (bundle/bundle-cache.ts), by DAGs folder.
  const bundles = once(async () => (await import('../../bundle/bundle-cache.js')).dagBundleCache(path.join(env.cacheDir, 'dag-bundles')));
  const pushes = once(async () => (await import('../../image/pushed-images.js')).rememberedPushes(path.join(env.cacheDir, 'pushed-images.json')));
  /**
   * The image this deploy built was pushed to this repository before (by this machine): the registry gets the new
   * tag for the manifest it holds, and nothing else. Undefined when it is not remembered or the registry will not
   * take the tag (a manifest or a layer gone, another image): the engine pushes it then.
   */
  const tagAlreadyPushed = async (input: { imageId: string; repository: string; remoteRef: string; auth: RegistryCredentials }) => {
    const known = await (await pushes()).find(input.repository, input.imageId);
    if (!known) return undefined;
    const { tagPushedManifest } = await import('../../image/registry.js');
    const tagged = await tagPushedManifest({
      repository: input.repository,
      tag: input.remoteRef.slice(input.repository.length + 1),
      digest: known.digest,
      imageId: input.imageId,
      ...(known.manifest ? { known: known.manifest } : {}),
      auth: input.auth,
      ...(input.auth.registrytoken ? { bearer: input.auth.registrytoken } : {}),
      signal,
    }).catch((error: unknown) => {
      if (signal.aborted) throw error;
      out.debug(`The registry did not take the tag for the image it has (${String(error)}): pushing it.`);
      return undefined;
    });
    if (!tagged) return undefined;
    emit({ type: 'notice', message: `The registry already has this image (${tagged.digest}): tagged it ${input.remoteRef} without pushing its layers.` });
    const remembered = known.manifest ? Promise.resolve() : (await pushes()).remember(input.repository, input.imageId, tagged.digest, tagged.manifest);
    return { digest: tagged.digest, untagged: remembered };
  };

  /**
   * Per repository, whether a push there goes through astro's relay (image/registry-relay.ts): decided once, as
   * preparePush names the repository, while the image builds; a push to a repository not named before goes directly.
   * Only a registry that is far, that no proxy is set for, and an engine that reaches this machine's loopback;
   * ASTRO_PUSH_RELAY=0 turns it off.
   */
  const relayChoices = new Map<string, Promise<boolean>>();
  const relayChoice = (repository: string): Promise<boolean> =>
    (async () => {
      const [{ FAR_REGISTRY_MS, proxyFor }, registry, { rememberedChallenges }] = await Promise.all([
        import('../../image/registry-relay.js'),
        import('../../image/registry.js'),
        import('../../image/registry-challenges.js'),
      ]);
      const origin = registry.registryOrigin(repository);
      if (!env.pushRelay || proxyFor(origin, env.raw) !== undefined || !(await (await engine()).sharesLoopback(signal))) return false;
      const probed = await registry.probeRegistry(origin, signal);
      out.debug(
        probed ? `The registry at ${origin} answered on a new connection in ${Math.round(probed.tookMs)} ms.` : `The registry at ${origin} did not answer.`,
      );
      // Its challenge, remembered as the registry reads remember theirs: the push's token is asked for with it.
      if (probed?.challenge)
        await rememberedChallenges(path.join(env.cacheDir, 'registry-challenges.json')).remember(registry.registryHost(repository), probed.challenge);
      return probed !== undefined && probed.tookMs >= FAR_REGISTRY_MS;
    })().catch(() => false);

  // What this machine built (image/built-images.ts), loaded by an image deploy only.
  const builds = once(async () => (await import('../../image/built-images.js')).rememberedBuilds(path.join(env.cacheDir, 'built-images.json')));
  /**
   * The image a build with these labels made here before, named `localRef` as the build would name it; undefined
   * when none is remembered, it is gone or no longer what the build would make, or the Dockerfile has several stages
   * (the image-inputs digest covers the first stage's base image only).
   */
  const builtBefore = async (labels: Record<string, string>, localRef: string) => {
    const imageId = await (await builds()).find(labels);
    if (imageId === undefined || (await dockerfileStages(projectDir).catch(() => 0)) !== 1) return undefined;
    const [{ hasBuildLabels }, e] = await Promise.all([import('../../image/built-images.js'), engine()]);
    const image = await e.inspect(imageId).catch(() => undefined);
    if (!image || image.os !== 'linux' || image.architecture !== 'amd64' || !hasBuildLabels(image.labels, labels)) return undefined;
    await e.tag(image.id, localRef);
    emit({ type: 'notice', message: `This machine built the image for these inputs before (${image.id}): using it, not building again.` });
    return { runtimeVersion: image.labels[RUNTIME_VERSION_LABEL], labels: image.labels, imageId: image.id };
  };

  return {
    choose: (title, choices, flags) => select(out, title, choices, flags, signal),
    confirm: (question, flags) => confirm(out, question, flags, signal),
    emit,
    signal,
    saveDeploymentId: async (id) => {
      await config.setSetting('project.deployment', id, 'project');
      out.info(`Saved Deployment ${id} for this project (.astro/config.yaml).`);
    },
    checkLocation: async () => ((await hostPython()) ? 'host' : 'image'),

    parse: async ({ envFile, image }) => {
      const { runParse } = await import('../../parse/runParse.js');
      const { headline } = await import('../../parse/render.js');
      const report = await runParse(
        {
          projectDir,
          image: image ?? ((await hostPython()) ? undefined : await baseImageOf(projectDir)),
          configuredPython,
          envFile,
          hostEnv: env.raw,
          cacheDir: env.cacheDir,
          signal,
          onProgress: (e) => {
            if (e.type === 'listing') emit({ type: 'progress', phase: 'parse', message: `${e.toParse} of ${e.files} DAG files to parse` });
          },
        },
        { docker: image || !(await hostPython()) ? await engine() : undefined },
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
      const { runPytest } = await import('../../parse/pytest.js');
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
        { docker: image ? await engine() : undefined },
      );
      return { passed: result.passed, exitCode: result.exitCode };
    },

    image: {
      build: async ({ localRef, excludeDags, labels, buildSecrets, noCache }) => {
        const reused = noCache ? undefined : await builtBefore(labels, localRef);
        if (reused) return reused;
        const [{ buildProjectImage, resolveBuildSecrets, stepName }, e, context] = await Promise.all([
          import('../../image/build.js'),
          engine(),
          contextSnapshot(excludeDags),
        ]);
        const secrets = await resolveBuildSecrets(buildSecrets, { cwd: projectDir, env: env.raw });
        const built = await buildProjectImage(e, {
          projectDir,
          context,
          tag: localRef,
          excludeDags,
          labels,
          noCache,
          secrets,
          ...(env.dockerBuilder ? { builder: env.dockerBuilder } : {}),
          signal,
          onProgress: (p) => {
            if (p.type === 'build-step') emit({ type: 'progress', phase: 'build', message: `${stepName(p)}: ${p.instruction}` });
            if (p.type === 'build-log') out.debug(p.line);
          },
        });
        // The next build with these labels takes this image.
        await (await builds()).remember(labels, built.imageId);
        return { runtimeVersion: built.runtimeVersion, labels: built.labels, imageId: built.imageId };
      },
      inspectPrebuilt: async (ref) => {
        const [{ inspectPrebuiltImage }, e] = await Promise.all([import('../../image/check.js'), engine()]);
        const image = await inspectPrebuiltImage(e, ref);
        return { runtimeVersion: image.runtimeVersion, labels: image.labels };
      },
      preparePush: (repository) => {
        if (!relayChoices.has(repository)) relayChoices.set(repository, relayChoice(repository));
      },
      push: async ({ localRef, imageId, remoteRef, auth }) => {
        const repository = repositoryOf(remoteRef);
        // Remembered by image id (image/pushed-images.ts), so only a build's own can be tagged without a push.
        const built = imageId !== undefined && repository !== undefined ? { imageId, repository } : undefined;
        if (built) {
          const tagged = await tagAlreadyPushed({ ...built, remoteRef, auth });
          if (tagged) return tagged;
        }
        const relayChosen = repository !== undefined && auth.registrytoken !== undefined ? relayChoices.get(repository) : undefined;
        const [{ pushImage }, { registryOrigin }, e, far] = await Promise.all([
          import('../../image/push.js'),
          import('../../image/registry.js'),
          engine(),
          relayChosen ?? false,
        ]);
        const layers = new Map<string, { current: number; total: number }>();
        const pushed = await pushImage(e, {
          localRef,
          remoteRef,
          auth,
          ...(far ? { relayTo: registryOrigin(repository!) } : {}),
          signal,
          onProgress: (p) => {
            if (p.type === 'push-layer' && p.total) {
              layers.set(p.id, { current: Math.min(p.current ?? 0, p.total), total: p.total });
              const done = [...layers.values()].reduce((n, l) => n + l.current, 0);
              const total = [...layers.values()].reduce((n, l) => n + l.total, 0);
              emit({ type: 'progress', phase: 'push', bytesDone: done, bytesTotal: total });
            }
            if (p.type === 'push-retry') emit({ type: 'warning', message: `Push failed (${p.reason}); retrying in ${Math.round(p.delayMs / 100) / 10}s` });
            if (p.type === 'push-relay-failed') out.debug(`The push through astro's relay did not go through (${p.reason}): the engine pushes directly.`);
          },
        });
        // Remembered while the deploy goes on (awaited with the untagging): a redeploy of this image only tags it.
        const remembered = built ? pushes().then((p) => p.remember(built.repository, built.imageId, pushed.digest)) : undefined;
        return { digest: pushed.digest, untagged: remembered ? Promise.all([pushed.untagged, remembered]).then(() => undefined) : pushed.untagged };
      },
    },

    plan: {
      prepare: () => void baseImageId().catch(() => undefined),
      imageInputs: async ({ excludeDags, buildSecrets }) => {
        const [{ imageInputsDigest, buildSecretIds }, context] = await Promise.all([import('./digest.js'), contextSnapshot(excludeDags)]);
        const baseImage = await baseImageId();
        return {
          digest: imageInputsDigest({ context: context.digest, excludeDags, buildArgs: {}, secretIds: buildSecretIds(buildSecrets), baseImage }),
          contextBytes: context.bytes,
          contextFiles: context.files,
          baseImage,
        };
      },
      dagsDigest: async (bundle) => {
        if (bundle.contentDigest) return bundle.contentDigest;
        const { dagBundleDigest } = await import('./digest.js');
        return (await dagBundleDigest(bundle.data)).digest;
      },
      changedFiles: async (commit) => {
        const { changedFilesSince } = await import('./git.js');
        return changedFilesSince(projectDir, commit, env.raw);
      },
    },

    bundle: {
      create: async ({ sourceDir, prefix, generated, fresh }) => {
        const [{ createDagBundle }, cache] = await Promise.all([import('../../bundle/tarball.js'), bundles()]);
        const bundle = await createDagBundle({ sourceDir, prefix, signal, cache, fresh, ...(generated ? { generated } : {}) });
        const { data, bytes, dagFileCount, fileCount, contentDigest, reused } = bundle;
        return { data, bytes, dagFileCount, fileCount, contentDigest, reused };
      },
    },
  };
}

/** `host/name` of `host/name:tag` (undefined for a reference by digest, which is never pushed to). */
function repositoryOf(remoteRef: string): string | undefined {
  const colon = remoteRef.lastIndexOf(':');
  return colon > remoteRef.lastIndexOf('/') && !remoteRef.includes('@') ? remoteRef.slice(0, colon) : undefined;
}

async function projectDockerfile(projectDir: string) {
  const { loadDockerfile } = await import('../../image/runtime/dockerfile.js');
  return loadDockerfile(path.join(projectDir, 'Dockerfile'), { displayPath: 'Dockerfile' });
}

/** How many stages (FROM lines) the project's Dockerfile has. */
async function dockerfileStages(projectDir: string): Promise<number> {
  return (await projectDockerfile(projectDir)).stages.length;
}

/** The first stage's image of the project Dockerfile: where DAG-only deploys parse when the host has no Airflow. */
async function baseImageOf(projectDir: string): Promise<string> {
  const image = (await projectDockerfile(projectDir)).base?.image;
  if (!image) throw new UserError('Cannot tell which image to parse the DAGs in: the Dockerfile has no FROM image.');
  return image;
}
