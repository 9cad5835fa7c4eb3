import { describe, expect, it } from 'vitest';
import { InterruptedError, NeedsInputError, UserError } from '../../../src/errors.js';
import { deployToAstro, type DeployPorts, type DeployRequest } from '../../../src/deploy/astro/deploy.js';
import type { AstroControlPlane } from '../../../src/platform/astro/client.js';
import type { Deployment } from '../../../src/platform/astro/schemas.js';

function deployment(overrides: Partial<Deployment> = {}): Deployment {
  return {
    id: 'dep-1',
    name: 'prod',
    namespace: 'cosmic-planet-1234',
    runtimeVersion: '3.1-8',
    organizationId: 'org-1',
    workspaceId: 'ws-1',
    webServerUrl: '',
    isDagDeployEnabled: true,
    isCicdEnforced: false,
    status: 'HEALTHY',
    ...overrides,
  } as Deployment;
}

function setup(dep: Deployment, tweak: Partial<DeployPorts> = {}) {
  const calls: string[] = [];
  const bodies: Record<string, unknown> = {};
  let state = { ...dep };
  const controlPlane: AstroControlPlane = {
    getSelfUser: async () => ({ id: 'u' }),
    listOrganizations: async () => [],
    getOrganization: async () => ({ id: 'org-1', name: 'o' }),
    listWorkspaces: async () => [],
    listDeployments: async () => {
      calls.push('list');
      return [state];
    },
    getDeployment: async () => {
      calls.push('get');
      return state;
    },
    getDeploymentOptions: async () => ({ runtimeReleases: [{ version: '3.1-8' }] }),
    createDeploy: async (_o, _d, body) => {
      calls.push(`create:${body.type}`);
      bodies.create = body;
      return {
        id: 'deploy-1',
        imageRepository: '127.0.0.1:5000/cosmic-planet-1234/airflow',
        imageTag: 'deploy-2026',
        dagsUploadUrl: 'http://blob/sas',
      } as never;
    },
    finalizeDeploy: async (_o, _d, _id, body) => {
      calls.push('finalize');
      bodies.finalize = body;
      state = { ...state, status: 'HEALTHY', imageTag: 'deploy-2026', dagTarballVersion: body.dagTarballVersion } as Deployment;
      return { id: 'deploy-1', imageRepository: '', imageTag: 'deploy-2026', dagTarballVersion: body.dagTarballVersion } as never;
    },
  };
  const events: string[] = [];
  const controller = new AbortController();
  const ports: DeployPorts = {
    session: { domain: 'localhost', token: 'Bearer t', organizationId: 'org-1', workspaceId: 'ws-1', source: 'context', restBaseUrl: '', isApiToken: false },
    controlPlane,
    choose: async (_t, choices) => choices[0]!.value,
    confirm: async () => {
      throw new NeedsInputError('no tty', ['--force']);
    },
    emit: (e) => events.push(e.type === 'phase' ? `${e.phase}:${e.state}` : `${e.type}:${'message' in e ? e.message : ''}`),
    parse: async () => {
      calls.push('parse');
      return { ok: true, failures: [] };
    },
    pytest: async () => {
      calls.push('pytest');
      return { passed: true, exitCode: 0 };
    },
    image: {
      build: async (input) => {
        calls.push(`build:excludeDags=${input.excludeDags}`);
        return { runtimeVersion: '3.1-8', labels: {} };
      },
      inspectPrebuilt: async () => {
        calls.push('inspect');
        return { runtimeVersion: '3.1-8', labels: {} };
      },
      push: async (input) => {
        calls.push(`push:${input.remoteRef}:${input.auth.username}`);
        return { digest: 'sha256:abc' };
      },
    },
    bundle: {
      create: async () => {
        calls.push('bundle');
        return { data: Buffer.from('x'), bytes: 1, dagFileCount: 3 };
      },
      upload: async () => {
        calls.push('upload');
        return { versionId: 'v-1' };
      },
    },
    checkLocation: async () => 'host',
    runtime: {
      preflight: async () => {
        calls.push('preflight');
        return { notices: [], expectedVersion: '3.1-8', fromImage: 'astrocrpublic.azurecr.io/runtime:3.1-8' };
      },
      checkImage: async (input) => {
        calls.push(`runtime-check:${input.label}`);
        return { notices: [], version: input.label ?? '' };
      },
    },
    git: async () => {
      calls.push('git');
      return { skippedBecause: 'not a repo' };
    },
    saveDeploymentId: async (id) => {
      calls.push(`save:${id}`);
    },
    signal: controller.signal,
    ...tweak,
  };
  return { ports, calls, bodies, events, controller };
}

const base: DeployRequest = {
  projectDir: '/project',
  deploymentId: 'dep-1',
  prompt: false,
  save: false,
  mode: 'full',
  force: false,
  skipParse: false,
  buildSecrets: [],
  gitMetadata: true,
  showWarnings: true,
  autoSelect: false,
};

describe('deployToAstro', () => {
  it('checks and builds everything locally before creating the deploy, then pushes and uploads, then finalizes', async () => {
    const { ports, calls, bodies } = setup(deployment());
    const result = await deployToAstro(base, ports);
    expect(calls).toEqual([
      // The Deployment is named up front: its DAGs are packed and git read while it is looked up.
      'bundle',
      'git',
      'get',
      'parse',
      // The build starts beside the runtime preflight; the deploy is created only once both are through.
      'build:excludeDags=true',
      'preflight',
      'runtime-check:3.1-8',
      'create:IMAGE_AND_DAG',
      'push:127.0.0.1:5000/cosmic-planet-1234/airflow:deploy-2026:cli',
      'upload',
      'finalize',
    ]);
    expect(bodies.finalize).toEqual({ dagTarballVersion: 'v-1' });
    expect(result).toMatchObject({
      deployId: 'deploy-1',
      type: 'IMAGE_AND_DAG',
      image: { tag: 'deploy-2026', digest: 'sha256:abc' },
      dags: { version: 'v-1' },
    });
  });

  it('ships the DAGs inside the image when DAG deploys are off', async () => {
    const { ports, calls, bodies, events } = setup(deployment({ isDagDeployEnabled: false }));
    await deployToAstro(base, ports);
    // Packed while the Deployment was looked up, then dropped: it does not take a bundle.
    expect(events).toContain('bundle:skipped');
    expect(events).not.toContain('bundle:done');
    expect(calls).not.toContain('upload');
    expect(calls).toContain('build:excludeDags=false');
    expect(calls).toContain('parse');
    expect(bodies.finalize).toEqual({});
  });

  it('refuses --dags and --image on a Deployment without DAG deploys, before creating anything', async () => {
    for (const mode of ['dags', 'image'] as const) {
      const { ports, calls } = setup(deployment({ isDagDeployEnabled: false }));
      await expect(deployToAstro({ ...base, mode }, ports)).rejects.toThrow(/DAG-only deploys are not enabled for this Deployment/);
      expect(calls.some((c) => c.startsWith('create'))).toBe(false);
    }
  });

  it('deploys DAGs only with --dags: no build, parse still runs', async () => {
    const { ports, calls, bodies } = setup(deployment());
    await deployToAstro({ ...base, mode: 'dags' }, ports);
    expect(calls).toEqual(['bundle', 'git', 'get', 'parse', 'create:DAG_ONLY', 'upload', 'finalize']);
    expect(bodies.finalize).toEqual({ dagTarballVersion: 'v-1' });
  });

  it('deploys the image only with --image, finalizing with an empty DAG version', async () => {
    const { ports, calls, bodies } = setup(deployment());
    await deployToAstro({ ...base, mode: 'image' }, ports);
    expect(calls).not.toContain('bundle');
    expect(calls).not.toContain('parse');
    expect(calls).toContain('create:IMAGE_ONLY');
    expect(bodies.finalize).toEqual({ dagTarballVersion: '' });
  });

  it("uses a prebuilt image with --image-name instead of building, and ships (and parses) dags/ beside it as Astronomer's CLI does", async () => {
    const { ports, calls } = setup(deployment());
    await deployToAstro({ ...base, imageName: 'my-image:1' }, ports);
    expect(calls).toContain('inspect');
    expect(calls.some((c) => c.startsWith('build'))).toBe(false);
    expect(calls).not.toContain('preflight');
    expect(calls).toContain('create:IMAGE_AND_DAG');
    expect(calls).toContain('upload');
    // The bundle comes from the project's dags/, so it is checked like any other.
    expect(calls).toContain('parse');
  });

  it('--image-name without DAG deploys: the image carries its own DAGs, so nothing of the project is parsed or uploaded', async () => {
    const { ports, calls, events } = setup(deployment({ isDagDeployEnabled: false }));
    await deployToAstro({ ...base, imageName: 'my-image:1' }, ports);
    expect(calls).toContain('create:IMAGE_AND_DAG');
    expect(calls).not.toContain('parse');
    expect(events).toContain('bundle:skipped');
    expect(calls).not.toContain('upload');
  });

  it('packs the DAGs while the Deployment is looked up when its id is given; after the lookup when it is chosen', async () => {
    const named = setup(deployment());
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const getDeployment = named.ports.controlPlane.getDeployment;
    named.ports.controlPlane.getDeployment = async (...args) => {
      await answered;
      return getDeployment(...args);
    };
    const pending = deployToAstro({ ...base, mode: 'dags' }, named.ports);
    await new Promise((resolve) => setImmediate(resolve));
    // Both in flight: the bundle finished while the lookup still waits for its answer.
    expect(named.calls).toEqual(['bundle', 'git']);
    answer();
    const result = await pending;
    expect(result).toMatchObject({ type: 'DAG_ONLY', dags: { version: 'v-1' } });
    expect(named.events.filter((e) => e.startsWith('bundle:'))).toEqual(['bundle:start', 'bundle:done']);
    expect(result.timings.bundle).toBeGreaterThanOrEqual(0);

    const chosen = setup(deployment());
    await deployToAstro({ ...base, mode: 'dags', deploymentId: undefined, deploymentName: 'prod' }, chosen.ports);
    expect(chosen.calls).toEqual(['git', 'list', 'bundle', 'parse', 'create:DAG_ONLY', 'upload', 'finalize']);
  });

  it('opens the blob store connection as soon as a bundle is known to ship, and tells the upload whose bundle it is', async () => {
    const withPrepare = (dep: Deployment) => {
      const s = setup(dep);
      s.ports.bundle = {
        ...s.ports.bundle,
        prepareUpload: (id) => s.calls.push(`prepare-upload:${id}`),
        upload: async (input) => {
          s.calls.push(`upload:${input.deploymentId}`);
          return { versionId: 'v-1' };
        },
      };
      return s;
    };
    // --dags to a named Deployment: while it is looked up, before anything else answers.
    const dags = withPrepare(deployment());
    await deployToAstro({ ...base, mode: 'dags' }, dags.ports);
    expect(dags.calls.slice(0, 2)).toEqual(['bundle', 'prepare-upload:dep-1']);
    expect(dags.calls).toContain('upload:dep-1');
    // A chosen Deployment, a full deploy: once the bundle is known to ship, before the build and the create.
    const full = withPrepare(deployment());
    await deployToAstro({ ...base, deploymentId: undefined, deploymentName: 'prod' }, full.ports);
    const at = (call: string) => full.calls.findIndex((c) => c.startsWith(call));
    expect(at('prepare-upload:dep-1')).toBeGreaterThan(at('list'));
    expect(at('prepare-upload:dep-1')).toBeLessThan(at('build'));
    expect(at('prepare-upload:dep-1')).toBeLessThan(at('create'));
    expect(full.calls.filter((c) => c.startsWith('prepare-upload'))).toHaveLength(1);
    // No bundle ships: no connection.
    for (const [dep, mode] of [
      [deployment(), 'image'],
      [deployment({ isDagDeployEnabled: false }), 'full'],
    ] as const) {
      const none = withPrepare(dep);
      await deployToAstro({ ...base, mode }, none.ports);
      expect(none.calls.filter((c) => c.startsWith('prepare-upload') || c.startsWith('upload'))).toEqual([]);
    }
  });

  it("opens a connection to the Deployment's registry as the plan's reads start: full deploys to a named Deployment only", async () => {
    const plan = {
      imageInputs: async () => ({ digest: 'd'.repeat(64), contextBytes: 1, contextFiles: 1 }),
      dagsDigest: async () => 'e'.repeat(64),
      changedFiles: async () => undefined,
    };
    const withRegistry = () => {
      const s = setup(deployment(), { plan });
      s.ports.registry = { inspect: async () => undefined, prepare: (id) => s.calls.push(`prepare-registry:${id}`) };
      return s;
    };
    const full = withRegistry();
    await deployToAstro(base, full.ports);
    expect(full.calls.filter((c) => c.startsWith('prepare-registry'))).toEqual(['prepare-registry:dep-1']);
    expect(full.calls.indexOf('prepare-registry:dep-1')).toBeLessThan(full.calls.indexOf('get'));
    // Nothing of the registry is read for these: no connection.
    for (const req of [
      { ...base, mode: 'dags' as const },
      { ...base, imageName: 'my-image:1' },
      { ...base, deploymentId: undefined, deploymentName: 'prod' },
    ]) {
      const none = withRegistry();
      await deployToAstro(req, none.ports);
      expect(none.calls.filter((c) => c.startsWith('prepare-registry'))).toEqual([]);
    }
  });

  it("asks for the push's registry token while the deploy is created, for the repository the last image went to, and pushes with it", async () => {
    const plan = {
      imageInputs: async () => ({ digest: 'd'.repeat(64), contextBytes: 1, contextFiles: 1 }),
      dagsDigest: async () => 'e'.repeat(64),
      changedFiles: async () => undefined,
    };
    const run = async (lastRepository: string | undefined, tokens: Record<string, string | undefined>) => {
      const s = setup(deployment(), { plan });
      const pushes: { registrytoken?: string }[] = [];
      s.ports.controlPlane = {
        ...s.ports.controlPlane,
        listDeploys: async () =>
          lastRepository ? [{ id: 'old', type: 'IMAGE_AND_DAG', status: 'DEPLOYED', imageRepository: lastRepository, imageTag: 'deploy-2025' } as never] : [],
      };
      s.ports.registry = {
        inspect: async () => undefined,
        pushToken: async (repository) => {
          s.calls.push(`push-token:${repository}`);
          return tokens[repository];
        },
      };
      const push = s.ports.image.push;
      s.ports.image = { ...s.ports.image, push: async (input) => (pushes.push(input.auth), push(input)) };
      await deployToAstro(base, s.ports);
      return { calls: s.calls, pushes };
    };
    const created = '127.0.0.1:5000/cosmic-planet-1234/airflow';
    const same = await run(created, { [created]: 'scoped' });
    expect(same.calls.filter((c) => c.startsWith('push-token'))).toEqual([`push-token:${created}`]);
    expect(same.calls.indexOf(`push-token:${created}`)).toBe(same.calls.indexOf('create:IMAGE_AND_DAG') + 1);
    expect(same.pushes).toEqual([expect.objectContaining({ username: 'cli', password: 'Bearer t', registrytoken: 'scoped' })]);

    // The create names another repository: its token is asked for then; none to be had pushes with the credentials.
    const moved = await run('127.0.0.1:5000/old-name/airflow', { [created]: 'for-created' });
    expect(moved.calls.filter((c) => c.startsWith('push-token'))).toEqual(['push-token:127.0.0.1:5000/old-name/airflow', `push-token:${created}`]);
    expect(moved.pushes[0]!.registrytoken).toBe('for-created');
    const none = await run(undefined, {});
    expect(none.calls.filter((c) => c.startsWith('push-token'))).toEqual([`push-token:${created}`]);
    expect(none.pushes[0]).not.toHaveProperty('registrytoken');
  });

  it('an early bundle that fails does not stop a deploy that ships no bundle, and stops one that does', async () => {
    const broken = { create: async () => Promise.reject(new UserError('bundle validation failed: symlink dags/x points outside')) };
    const off = setup(deployment({ isDagDeployEnabled: false }));
    off.ports.bundle = { ...off.ports.bundle, ...broken };
    await expect(deployToAstro(base, off.ports)).resolves.toMatchObject({ type: 'IMAGE_AND_DAG' });
    expect(off.events).toContain('bundle:skipped');

    const on = setup(deployment());
    on.ports.bundle = { ...on.ports.bundle, ...broken };
    await expect(deployToAstro(base, on.ports)).rejects.toThrow(/symlink dags\/x points outside/);
    expect(on.events).toContain('bundle:failed');
    expect(on.calls.some((c) => c.startsWith('create'))).toBe(false);
  });

  it('names the lookup and the early bundle when interrupted while both run, and drops the bundle', async () => {
    const ctx = setup(deployment());
    let looking!: () => void;
    const lookingUp = new Promise<void>((resolve) => (looking = resolve));
    const untilAborted = (signal: AbortSignal | undefined) =>
      new Promise<never>((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    ctx.ports.bundle.create = async ({ signal }) => untilAborted(signal);
    ctx.ports.controlPlane.getDeployment = async (_o, _d, signal) => {
      looking();
      return untilAborted(signal);
    };
    const pending = deployToAstro({ ...base, mode: 'dags' }, ctx.ports).catch((e: unknown) => e);
    await lookingUp;
    ctx.controller.abort('SIGINT');
    const error = (await pending) as InterruptedError;
    expect(error).toBeInstanceOf(InterruptedError);
    expect(error.message).toMatch(/during (bundle and select|select and bundle)\. Nothing reached the platform/);
    expect(ctx.events).toContain('bundle:skipped');
  });

  it('--image: an image-only deploy, without the DAGs', async () => {
    const { ports, calls } = setup(deployment());
    await deployToAstro({ ...base, mode: 'image' }, ports);
    expect(calls).toContain('create:IMAGE_ONLY');
    expect(calls).not.toContain('upload');
  });

  it('--no-dags-base-dir bundles without the dags/ prefix; --no-cache builds without the cache; --dag-bundle-name goes to the create', async () => {
    const seen: { prefix?: string; noCache?: boolean } = {};
    const { ports, bodies } = setup(deployment());
    const create = ports.bundle.create;
    ports.bundle.create = async (input) => ((seen.prefix = input.prefix), create(input));
    const build = ports.image.build;
    ports.image.build = async (input) => ((seen.noCache = input.noCache), build(input));
    await deployToAstro({ ...base, dagsBaseDir: false, noCache: true, dagBundleName: 'team-a' }, ports);
    expect(seen).toEqual({ prefix: '', noCache: true });
    expect(bodies.create).toMatchObject({ type: 'IMAGE_AND_DAG', dagBundleName: 'team-a' });
    const plain = setup(deployment());
    const plainCreate = plain.ports.bundle.create;
    plain.ports.bundle.create = async (input) => ((seen.prefix = input.prefix), plainCreate(input));
    await deployToAstro(base, plain.ports);
    expect(seen.prefix).toBe('dags');
    expect(plain.bodies.create).not.toHaveProperty('dagBundleName');
  });

  it('stops on a parse failure before anything reaches the platform; --force deploys anyway', async () => {
    const failing = { parse: async () => ({ ok: false, failures: [{ path: 'dags/bad.py', message: 'SyntaxError' }] }) };
    const { ports, calls, events } = setup(deployment(), failing);
    await expect(deployToAstro(base, ports)).rejects.toThrow(/your local DAGs did not parse/);
    expect(calls.some((c) => c.startsWith('create'))).toBe(false);
    expect(events).toContain('warning:dags/bad.py: SyntaxError');
    const forced = setup(deployment(), failing);
    await deployToAstro({ ...base, force: true }, forced.ports);
    expect(forced.calls).toContain('finalize');
  });

  it('skips the parse when skip_parse or ASTRONOMER_SKIP_PARSE says so', async () => {
    const { ports, calls } = setup(deployment());
    await deployToAstro({ ...base, skipParse: true }, ports);
    expect(calls).not.toContain('parse');
  });

  it('stops when pytest fails, with the message users know', async () => {
    const { ports, calls } = setup(deployment(), { pytest: async () => ({ passed: false, exitCode: 1 }) });
    await expect(deployToAstro({ ...base, pytest: {} }, ports)).rejects.toThrow(/at least 1 pytest in your tests directory failed/);
    expect(calls.some((c) => c.startsWith('create'))).toBe(false);
  });

  it('needs --force for an empty dags folder without a terminal', async () => {
    const empty = { bundle: { create: async () => ({ data: Buffer.alloc(0), bytes: 0, dagFileCount: 0 }), upload: async () => ({ versionId: 'v' }) } };
    const { ports } = setup(deployment(), empty);
    const error = await deployToAstro(base, ports).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NeedsInputError);
    expect((error as NeedsInputError).missing).toEqual(['--force']);
    const forced = setup(deployment(), empty);
    await expect(deployToAstro({ ...base, force: true }, forced.ports)).resolves.toMatchObject({ deployId: 'deploy-1' });
  });

  it('refuses a CI/CD-enforced Deployment for a user session but not for an API token', async () => {
    const { ports } = setup(deployment({ isCicdEnforced: true }));
    await expect(deployToAstro(base, ports)).rejects.toThrow(/ci\/cd enforcement is enabled for the deployment prod/);
    const token = setup(deployment({ isCicdEnforced: true }));
    token.ports.session = { ...token.ports.session, isApiToken: true };
    await expect(deployToAstro(base, token.ports)).resolves.toBeDefined();
  });

  it('says what reached the platform when a step after create fails', async () => {
    const { ports } = setup(deployment(), {
      bundle: {
        create: async () => ({ data: Buffer.from('x'), bytes: 1, dagFileCount: 1 }),
        upload: async () => {
          throw new UserError('upload URL expired');
        },
      },
    });
    const error = (await deployToAstro(base, ports).catch((e: unknown) => e)) as UserError;
    expect(error.message).toBe('upload URL expired');
    expect(error.nextStep).toMatch(/Deploy deploy-1 was created but not finalized.*The image was pushed/);
  });

  it('finalizes while the pushed name leaves the local engine, and returns (or fails) only once it has', async () => {
    for (const uploadFails of [false, true]) {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const { ports, calls } = setup(deployment(), {
        bundle: {
          create: async () => ({ data: Buffer.from('x'), bytes: 1, dagFileCount: 1 }),
          upload: async () => {
            if (uploadFails) throw new UserError('upload URL expired');
            return { versionId: 'v-1' };
          },
        },
      });
      ports.image.push = async () => {
        calls.push('push');
        return { digest: 'sha256:abc', untagged: gate.then(() => void calls.push('untagged')) };
      };
      let settled = false;
      const deploying = deployToAstro(base, ports).then(
        () => (settled = true),
        () => (settled = true),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (!uploadFails) expect(calls).toContain('finalize');
      expect(settled).toBe(false);
      release();
      await deploying;
      expect(calls.at(-1)).toBe('untagged');
    }
  });

  it('turns an interruption during the push into exit 130 with what reached the platform', async () => {
    const ctx = setup(deployment());
    ctx.ports.image.push = async () => {
      ctx.controller.abort('SIGINT');
      throw new Error('aborted');
    };
    const error = (await deployToAstro(base, ctx.ports).catch((e: unknown) => e)) as InterruptedError;
    expect(error).toBeInstanceOf(InterruptedError);
    expect(error.exitCode).toBe(130);
    expect(error.message).toMatch(/during (push|upload).*Deploy deploy-1 was created but not finalized/);
    expect(ctx.calls).not.toContain('finalize');
  });

  it('names every phase in flight when interrupted while push and upload run together', async () => {
    const ctx = setup(deployment());
    let release!: () => void;
    const uploading = new Promise<void>((resolve) => (release = resolve));
    ctx.ports.bundle.upload = async ({ signal }) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      throw new Error('aborted');
    };
    ctx.ports.image.push = async ({ signal }) => {
      release();
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      throw new Error('aborted');
    };
    const pending = deployToAstro(base, ctx.ports).catch((e: unknown) => e);
    await uploading;
    ctx.controller.abort('SIGTERM');
    const error = (await pending) as InterruptedError;
    expect(error).toBeInstanceOf(InterruptedError);
    expect(error.exitCode).toBe(143);
    expect(error.message).toMatch(/^Deploy interrupted by SIGTERM during (push and upload|upload and push)\. /);
  });

  it('says the outcome is unknown when interrupted after the finalize was sent and the deploy is still INITIALIZED', async () => {
    const ctx = setup(deployment());
    ctx.ports.controlPlane.getDeploy = async () => ({ id: 'deploy-1', status: 'INITIALIZED' }) as never;
    ctx.ports.controlPlane.finalizeDeploy = async (_o, _d, _id, _body, signal) => {
      ctx.controller.abort('SIGINT');
      return Promise.reject(new Error(signal?.aborted ? 'aborted' : 'not aborted'));
    };
    const error = (await deployToAstro(base, ctx.ports).catch((e: unknown) => e)) as InterruptedError;
    expect(error.message).toContain('during finalize');
    expect(error.message).toContain('its finalize sent, but whether the platform received it is unknown: check the Deployment before deploying again');
    expect(error.message).not.toContain('still runs its previous code');
    expect(error.message).not.toContain('Run astro deploy again');
  });

  it('says the deploy was finalized when the platform shows it moved past INITIALIZED', async () => {
    const ctx = setup(deployment());
    ctx.ports.controlPlane.getDeploy = async () => ({ id: 'deploy-1', status: 'DEPLOYED' }) as never;
    ctx.ports.controlPlane.finalizeDeploy = async (_o, _d, _id, _body, signal) => {
      ctx.controller.abort('SIGINT');
      return Promise.reject(new Error(signal?.aborted ? 'aborted' : 'not aborted'));
    };
    const error = (await deployToAstro(base, ctx.ports).catch((e: unknown) => e)) as InterruptedError;
    expect(error.message).toContain('The deploy was finalized before the interruption; the Deployment is updating.');
  });

  it('says the deploy was finalized when a failure comes after the finalize (e.g. the API down during --wait)', async () => {
    const ctx = setup(deployment({ status: 'DEPLOYING', imageTag: 'old' }));
    ctx.ports.controlPlane.getDeployment = async () => {
      ctx.calls.push('get');
      if (ctx.calls.includes('finalize')) throw new UserError('Could not reach the Astro API');
      return deployment();
    };
    const error = (await deployToAstro({ ...base, wait: { timeoutMs: 5_000, intervalMs: 1 } }, ctx.ports).catch((e: unknown) => e)) as UserError;
    expect(error.message).toBe('Could not reach the Astro API');
    expect(error.nextStep).toContain('The deploy was finalized; the Deployment is updating.');
  });

  it('waits until the Deployment runs this deploy', async () => {
    const { ports, calls } = setup(deployment({ status: 'HEALTHY', imageTag: 'old' }));
    const result = await deployToAstro({ ...base, wait: { timeoutMs: 5_000, intervalMs: 1 } }, ports);
    expect(result.status).toBe('HEALTHY');
    expect(calls.at(-1)).toBe('get');
  });

  it('parses and tests inside the built image when no host Python has Airflow', async () => {
    const images: (string | undefined)[] = [];
    const { ports, calls } = setup(deployment({ isDagDeployEnabled: false }), {
      checkLocation: async () => 'image',
      parse: async (input) => {
        calls.push('parse');
        images.push(input.image);
        return { ok: true, failures: [] };
      },
      pytest: async (input) => {
        calls.push('pytest');
        images.push(input.image);
        return { passed: true, exitCode: 0 };
      },
    });
    await deployToAstro({ ...base, pytest: {} }, ports);
    expect(calls.indexOf('parse')).toBeGreaterThan(calls.indexOf('build:excludeDags=false'));
    expect(calls.indexOf('pytest')).toBeLessThan(calls.indexOf('create:IMAGE_AND_DAG'));
    expect(images).toEqual(['cosmic-planet-1234/airflow:latest', 'cosmic-planet-1234/airflow:latest']);
  });

  it('refuses an image whose Runtime version the Deployment cannot take, before creating the deploy', async () => {
    const { ports, calls } = setup(deployment(), {});
    ports.runtime.checkImage = async () => {
      throw new UserError('Cannot deploy a downgraded Astro Runtime version.');
    };
    await expect(deployToAstro(base, ports)).rejects.toThrow(/downgraded/);
    expect(calls.some((c) => c.startsWith('create'))).toBe(false);
  });

  it('a preflight refusal aborts the build started beside it, and creates nothing', async () => {
    const { ports, calls, events } = setup(deployment(), {});
    let buildSignal: AbortSignal | undefined;
    ports.image.build = async (input) => {
      calls.push('build');
      buildSignal = input.signal;
      // A build that would outlast the preflight: it ends only when aborted.
      await new Promise((resolve) => input.signal?.addEventListener('abort', resolve, { once: true }));
      throw input.signal?.reason;
    };
    ports.runtime.preflight = async () => {
      calls.push('preflight');
      throw new UserError('The Dockerfile names no Astro Runtime image.');
    };
    await expect(deployToAstro(base, ports)).rejects.toThrow(/names no Astro Runtime image/);
    expect(calls).toContain('build');
    expect(buildSignal?.aborted).toBe(true);
    expect(events).toContain('build:skipped');
    expect(calls.some((c) => c.startsWith('create'))).toBe(false);
  });

  it('saves the chosen Deployment with --save', async () => {
    const { ports, calls } = setup(deployment());
    await deployToAstro({ ...base, save: true }, ports);
    expect(calls).toContain('save:dep-1');
  });
});
