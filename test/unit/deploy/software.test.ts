// The Software deploy plan (src/deploy/software/deploy.ts) with fake ports: what goes where, and every refusal.
import { describe, expect, it } from 'vitest';
import { InterruptedError, NeedsInputError, UserError } from '../../../src/errors.js';
import type { DeployEvent } from '../../../src/deploy/kernel/phases.js';
import {
  CUSTOM_REGISTRY_HOST_MISSING,
  deployToSoftware,
  IMAGE_FLAG_ON_IMAGE_DEPLOYMENT,
  IMAGE_FLAG_SKIPS_DAGS,
  NO_REGISTRY_URL,
  NO_WORKSPACE,
  NOT_DAG_DEPLOY_MESSAGE,
  utcMinute,
  type SoftwareDeployPorts,
  type SoftwareDeployRequest,
} from '../../../src/deploy/software/deploy.js';
import type {
  ImageUpdate,
  SoftwareAppConfig,
  SoftwareDeployApi,
  SoftwareDeploymentDetails,
  SoftwareDeploymentSummary,
  SoftwareFeatureFlags,
} from '../../../src/platform/software/deploy-api.js';
import type { DockerCredentials } from '../../../src/image/docker-credentials.js';

const WS = 'ws-a';
const NOW = Date.UTC(2025, 5, 7, 8, 9, 10);

const flagsOff: SoftwareFeatureFlags = {
  dagOnlyDeployment: false,
  byoUpdateRegistryEnabled: false,
  nfsMountDagDeployment: false,
  gitSyncDagDeployment: false,
  hardDeleteDeployment: false,
  manualNamespaceNames: false,
  triggererEnabled: false,
  namespaceFreeFormEntry: false,
  astroRuntimeEnabled: false,
};

function deployment(id: string, type: string, extra: Partial<SoftwareDeploymentDetails> = {}) {
  const releaseName = `rel-${id}`;
  const summary: SoftwareDeploymentSummary = {
    id,
    label: `label-${id}`,
    releaseName,
    workspace: { id: WS },
    deployInfo: { nextCli: 'deploy-7', current: 'deploy-6' },
    airflowVersion: undefined,
    runtimeVersion: '3.1-8',
    clusterId: 'cluster-1',
  };
  const details: SoftwareDeploymentDetails = {
    id,
    releaseName,
    airflowVersion: undefined,
    desiredAirflowVersion: undefined,
    runtimeVersion: '3.1-8',
    desiredRuntimeVersion: undefined,
    runtimeAirflowVersion: '3.1.8',
    urls: [
      { type: 'airflow', url: `https://deployments.example.com/${releaseName}/airflow` },
      ...(type === 'dag_deploy' ? [{ type: 'dagserver', url: `https://deployments.example.com/${releaseName}/dags/upload` }] : []),
      { type: 'registry', url: 'registry.example.com' },
    ],
    dagDeployment: { type },
    clusterId: 'cluster-1',
    ...extra,
  };
  return { summary, details };
}

interface Setup {
  version?: string;
  flags?: Partial<SoftwareFeatureFlags>;
  byoHost?: string;
  deployments?: ReturnType<typeof deployment>[];
  workspace?: boolean;
  credentials?: DockerCredentials;
  labels?: Record<string, string>;
  digest?: string;
  dagFiles?: number;
  confirm?: boolean | 'no-terminal';
  chooseIndex?: number;
  deploymentConfig?: { airflowImages: { version: string; tag: string }[] };
  dockerfileTag?: string;
  abortOn?: string;
}

function harness(setup: Setup = {}) {
  const list = setup.deployments ?? [deployment('img', 'image'), deployment('dag', 'dag_deploy'), deployment('nfs', 'volume'), deployment('git', 'git_sync')];
  const calls: string[] = [];
  const events: DeployEvent[] = [];
  const updates: { update: ImageUpdate; version: string }[] = [];
  const pushes: { localRef: string; remoteRef: string; auth: Record<string, string> }[] = [];
  const builds: { localRef: string; excludeDags: boolean; labels: Record<string, string>; noCache?: true }[] = [];
  const uploads: { url: string; description: string; bytes: number }[] = [];
  const questions: string[] = [];
  const controller = new AbortController();
  const step = (name: string) => {
    calls.push(name);
    if (setup.abortOn === name) controller.abort('SIGINT');
  };

  const appConfig: SoftwareAppConfig = {
    version: setup.version ?? '1.0.0',
    byoUpdateRegistryHost: setup.byoHost,
    flags: { ...flagsOff, dagOnlyDeployment: true, ...setup.flags },
  };
  const houston: SoftwareDeployApi = {
    platformVersion: async () => (step('version'), setup.version ?? '1.0.0'),
    getWorkspace: async (id) => (step('workspace'), setup.workspace === false ? undefined : { id, label: 'Team A', description: undefined }),
    listDeployments: async () => (step('list'), list.map((d) => d.summary)),
    getDeployment: async (id) => (step('deployment'), list.find((d) => d.summary.id === id)?.details),
    appConfig: async () => (step('appConfig'), appConfig),
    deploymentConfig: async () => (step('deploymentConfig'), setup.deploymentConfig ?? { airflowImages: [] }),
    runtimeReleases: async () => (step('runtimeReleases'), [{ version: '3.1-8', airflowVersion: '3.1.8' }]),
    updateDeploymentImage: async (update, version) => {
      step('update');
      updates.push({ update, version });
      return { releaseName: update.releaseName, runtimeVersion: update.runtimeVersion };
    },
  };
  const labels = setup.labels ?? { 'io.astronomer.docker.runtime.version': '3.1-8', 'io.astronomer.docker.airflow.version': '3.1.8' };
  const ports: SoftwareDeployPorts = {
    houston,
    token: 'raw-houston-token',
    choose: async (_title, choices, flags) => {
      step('choose');
      if (setup.chooseIndex === undefined) throw new NeedsInputError('no terminal', flags);
      return choices[setup.chooseIndex]!.value;
    },
    confirm: async (question, flags) => {
      questions.push(question);
      if (setup.confirm === 'no-terminal') throw new NeedsInputError(question, flags);
      return setup.confirm ?? false;
    },
    emit: (e) => events.push(e),
    checkLocation: async () => 'host',
    parse: async () => (step('parse'), { ok: true, failures: [] }),
    pytest: async () => (step('pytest'), { passed: true, exitCode: 0 }),
    image: {
      build: async (input) => {
        step('build');
        builds.push({ localRef: input.localRef, excludeDags: input.excludeDags, labels: input.labels, ...(input.noCache ? { noCache: true as const } : {}) });
        return { runtimeVersion: labels['io.astronomer.docker.runtime.version'], labels };
      },
      inspectPrebuilt: async () => (step('inspect'), { runtimeVersion: labels['io.astronomer.docker.runtime.version'], labels }),
      push: async (input) => {
        step('push');
        pushes.push({ localRef: input.localRef, remoteRef: input.remoteRef, auth: { ...input.auth } });
        return { digest: setup.digest ?? `sha256:${'ab'.repeat(32)}` };
      },
    },
    bundle: {
      create: async () => (step('bundle'), { data: Buffer.from('tgz'), bytes: 3, dagFileCount: setup.dagFiles ?? 2 }),
    },
    dockerCredentials: async () => (step('credentials'), setup.credentials),
    uploadDags: async (input) => {
      step('upload');
      uploads.push({ url: input.url, description: input.description, bytes: input.data.length });
      return { attempts: 1 };
    },
    dockerfileTag: async () => setup.dockerfileTag,
    saveDeploymentId: async (id) => step(`save ${id}`),
    signal: controller.signal,
    now: () => NOW,
  };
  return { ports, calls, events, updates, pushes, builds, uploads, questions };
}

function request(overrides: Partial<SoftwareDeployRequest> = {}): SoftwareDeployRequest {
  return {
    projectDir: '/project',
    domain: 'software.example.com',
    contextWorkspaceId: WS,
    prompt: false,
    save: false,
    autoSelect: false,
    mode: 'full',
    force: false,
    skipParse: false,
    buildSecrets: [],
    showWarnings: true,
    shaAsTag: false,
    ...overrides,
  };
}

const notices = (events: DeployEvent[]) => events.filter((e) => e.type === 'notice').map((e) => (e as { message: string }).message);
const warnings = (events: DeployEvent[]) => events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!error) throw new Error('expected the deploy to fail');
  return error;
}

describe('default registry', () => {
  it('builds and pushes to <registry>/<release>/airflow:<nextCli> with the Houston token, and runs no mutation', async () => {
    const h = harness();
    const result = await deployToSoftware(request({ deploymentId: 'img' }), h.ports);
    expect(h.pushes).toEqual([
      {
        localRef: 'rel-img/airflow:latest',
        remoteRef: 'registry.example.com/rel-img/airflow:deploy-7',
        auth: { username: 'user', password: 'raw-houston-token', serveraddress: 'registry.example.com' },
      },
    ]);
    expect(h.builds[0]).toEqual({
      localRef: 'rel-img/airflow:latest',
      excludeDags: false,
      labels: { 'io.astronomer.skip.revision': 'true', 'io.astronomer.deploy.revision.description': 'Deployed via <astro deploy>' },
    });
    expect(h.updates).toEqual([]);
    expect(h.calls).toEqual(['version', 'workspace', 'list', 'deployment', 'appConfig', 'parse', 'build', 'push']);
    expect(result).toMatchObject({
      releaseName: 'rel-img',
      dagDeploymentType: 'image',
      image: { registry: 'default', pushedAs: 'registry.example.com/rel-img/airflow:deploy-7' },
      dags: { delivery: 'image' },
    });
    expect(notices(h.events)).toContain('Deploying: rel-img');
  });

  it('builds without the build cache with --no-cache', async () => {
    const h = harness();
    await deployToSoftware(request({ deploymentId: 'img', noCache: true }), h.ports);
    expect(h.builds).toHaveLength(1);
    expect(h.builds[0]).toMatchObject({ localRef: 'rel-img/airflow:latest', noCache: true });
  });

  it('uses registry.<domain> on platforms older than 1.0.0, and refuses a 1.0.0+ Deployment without a registry URL', async () => {
    const old = harness({ version: '0.32.1' });
    await deployToSoftware(request({ deploymentId: 'img' }), old.ports);
    expect(old.pushes[0]!.remoteRef).toBe('registry.software.example.com/rel-img/airflow:deploy-7');

    const d = deployment('img', 'image');
    d.details.urls = d.details.urls!.filter((u) => u.type !== 'registry');
    const missing = harness({ deployments: [d] });
    const error = await failure(deployToSoftware(request({ deploymentId: 'img' }), missing.ports));
    expect(error.message).toBe(NO_REGISTRY_URL);
    expect(missing.calls).not.toContain('build');
  });

  it('builds dag_deploy images without DAGs and uploads the DAGs to the DAG server after the push', async () => {
    const h = harness();
    const result = await deployToSoftware(request({ deploymentId: 'dag', description: 'release 42' }), h.ports);
    expect(h.builds[0]!.excludeDags).toBe(true);
    expect(h.calls.indexOf('upload')).toBeGreaterThan(h.calls.indexOf('push'));
    expect(h.uploads).toEqual([{ url: 'https://deployments.example.com/rel-dag/dags/upload', description: 'release 42', bytes: 3 }]);
    expect(result.dags).toEqual({ delivery: 'dag-server', bytes: 3, dagFiles: 2, attempts: 1 });
  });

  it('keeps DAGs in the image of a dag_deploy Deployment when the cluster has DAG-only deploys off', async () => {
    const h = harness({ flags: { dagOnlyDeployment: false } });
    const result = await deployToSoftware(request({ deploymentId: 'dag' }), h.ports);
    expect(h.builds[0]!.excludeDags).toBe(false);
    expect(h.calls).not.toContain('upload');
    expect(result.dags.delivery).toBe('image');
  });

  it('ships the image of NFS and git-sync Deployments and says how their DAGs arrive', async () => {
    const nfs = harness();
    expect((await deployToSoftware(request({ deploymentId: 'nfs' }), nfs.ports)).dags.delivery).toBe('nfs');
    expect(notices(nfs.events).join('\n')).toContain('arrive through its NFS volume');
    expect(nfs.calls).not.toContain('upload');
    const git = harness();
    expect((await deployToSoftware(request({ deploymentId: 'git' }), git.ports)).dags.delivery).toBe('git-sync');
    expect(notices(git.events).join('\n')).toContain('arrive through git-sync');
  });
});

describe('custom registry', () => {
  const byo = { flags: { byoUpdateRegistryEnabled: true }, byoHost: 'custom.example.com:5000/team/airflow' };

  it('pushes deploy-<UTC minute> with the Docker credentials, then updates the image by tag', async () => {
    const h = harness({ ...byo, credentials: { username: 'robot', password: 'pw', source: 'config.json' } });
    const result = await deployToSoftware(request({ deploymentId: 'img' }), h.ports);
    const remoteRef = `custom.example.com:5000/team/airflow:rel-img-deploy-${utcMinute(NOW)}`;
    expect(utcMinute(NOW)).toBe('2025-06-07T08-09');
    expect(h.pushes).toEqual([
      { localRef: 'rel-img/airflow:latest', remoteRef, auth: { username: 'robot', password: 'pw', serveraddress: 'custom.example.com:5000' } },
    ]);
    expect(h.updates).toEqual([{ update: { releaseName: 'rel-img', image: remoteRef, runtimeVersion: '3.1-8', airflowVersion: '3.1.8' }, version: '1.0.0' }]);
    expect(h.calls.slice(-3)).toEqual(['credentials', 'push', 'update']);
    expect(result.image).toMatchObject({ registry: 'custom', pushedAs: remoteRef, updatedTo: remoteRef });
  });

  it('names the image by the pushed digest with sha_as_tag, and passes identity tokens on', async () => {
    const digest = `sha256:${'0f'.repeat(32)}`;
    const h = harness({ ...byo, digest, credentials: { username: '', password: '', identityToken: 'idt', source: 'helper' } });
    const result = await deployToSoftware(request({ deploymentId: 'img', shaAsTag: true }), h.ports);
    expect(h.updates[0]!.update.image).toBe(`custom.example.com:5000/team/airflow@${digest}`);
    expect(h.pushes[0]!.auth).toMatchObject({ identitytoken: 'idt' });
    expect(result.image?.digest).toBe(digest);
  });

  it('refuses to name the image by digest when the registry confirmed none', async () => {
    const h = harness({ ...byo, digest: 'unknown', credentials: { username: 'u', password: 'p', source: 'x' } });
    const error = await failure(deployToSoftware(request({ deploymentId: 'img', shaAsTag: true }), h.ports));
    expect(error.message).toContain('did not confirm a sha256 digest');
    expect(h.updates).toEqual([]);
  });

  it('warns and pushes without credentials when the user never logged in to the registry', async () => {
    const h = harness(byo);
    await deployToSoftware(request({ deploymentId: 'img' }), h.ports);
    expect(warnings(h.events)).toContain(
      'Not able to login to the private registry, please use `docker login custom.example.com:5000` to manually login to the registry',
    );
    expect(h.pushes[0]!.auth).toEqual({ username: '', password: '', serveraddress: 'custom.example.com:5000' });
  });

  it('refuses before building: no host configured, platform too old, image without a Runtime label', async () => {
    const noHost = harness({ flags: { byoUpdateRegistryEnabled: true } });
    expect((await failure(deployToSoftware(request({ deploymentId: 'img' }), noHost.ports))).message).toBe(CUSTOM_REGISTRY_HOST_MISSING);
    const old = harness({ ...byo, version: '0.29.1' });
    expect((await failure(deployToSoftware(request({ deploymentId: 'img' }), old.ports))).message).toBe(
      'UpdateDeploymentImage GraphQL API not implemented for the given Houston version',
    );
    for (const h of [noHost, old]) expect(h.calls).not.toContain('build');

    const unlabeled = harness({ ...byo, labels: {} });
    expect((await failure(deployToSoftware(request({ deploymentId: 'img' }), unlabeled.ports))).message).toBe(
      'the image should have label io.astronomer.docker.runtime.version',
    );
    expect(unlabeled.calls).not.toContain('push');
  });
});

describe('--remote', () => {
  it('runs only the image update with the given image and Runtime version', async () => {
    const h = harness();
    const result = await deployToSoftware(request({ deploymentId: 'img', imageName: 'quay.io/me/airflow:1', remote: { runtimeVersion: '3.1-8' } }), h.ports);
    expect(h.calls).toEqual(['version', 'workspace', 'list', 'deployment', 'appConfig', 'update']);
    expect(h.updates[0]!.update).toEqual({ releaseName: 'rel-img', image: 'quay.io/me/airflow:1', runtimeVersion: '3.1-8' });
    expect(result.image).toEqual({ registry: 'remote', updatedTo: 'quay.io/me/airflow:1', runtimeVersion: '3.1-8' });
    expect(notices(h.events)).toContain('Image successfully updated');
  });
});

describe('--dags', () => {
  it('uploads only the DAGs of a dag_deploy Deployment: no build, no push', async () => {
    const h = harness();
    const result = await deployToSoftware(request({ deploymentId: 'dag', mode: 'dags' }), h.ports);
    expect(h.calls).toEqual(['version', 'workspace', 'list', 'deployment', 'appConfig', 'bundle', 'parse', 'upload']);
    expect(h.uploads[0]!.description).toBe('Deployed via <astro deploy --dags>');
    expect(result.image).toBeUndefined();
  });

  it('derives the DAG server from the Airflow URL when Houston lists none', async () => {
    const d = deployment('dag', 'dag_deploy');
    d.details.urls = d.details.urls!.filter((u) => u.type !== 'dagserver');
    const h = harness({ deployments: [d] });
    await deployToSoftware(request({ deploymentId: 'dag', mode: 'dags' }), h.ports);
    expect(h.uploads[0]!.url).toBe('https://deployments.example.com/rel-dag/dags/upload');
  });

  it.each([
    ['volume', 'nfs', 'NFS volume'],
    ['git_sync', 'git', 'git-sync'],
    ['image', 'img', 'inside its image'],
  ])('refuses a %s Deployment, naming what to change', async (_type, id, hint) => {
    const h = harness();
    const error = await failure(deployToSoftware(request({ deploymentId: id, mode: 'dags' }), h.ports));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(NOT_DAG_DEPLOY_MESSAGE);
    expect((error as UserError).nextStep).toContain(hint);
    expect((error as UserError).nextStep).toContain('dag_deploy');
    expect(h.calls).not.toContain('bundle');
  });

  it('checks the cluster switch first, with the setting names of the platform version', async () => {
    const v1 = await failure(deployToSoftware(request({ deploymentId: 'nfs', mode: 'dags' }), harness({ flags: { dagOnlyDeployment: false } }).ports));
    expect(v1.message).toBe(
      'to perform this operation, set both deployments.dagOnlyDeployment and deployments.configureDagDeployment to true in your APC cluster',
    );
    const v2 = await failure(
      deployToSoftware(request({ deploymentId: 'dag', mode: 'dags' }), harness({ version: '2.0.1', flags: { dagOnlyDeployment: false } }).ports),
    );
    expect(v2.message).toContain('deployments.deployMechanisms.dagOnlyDeployment.enabled');
  });

  it('refuses platforms older than 0.34.0', async () => {
    const error = await failure(deployToSoftware(request({ deploymentId: 'dag', mode: 'dags' }), harness({ version: '0.33.9' }).ports));
    expect(error.message).toContain('need Astronomer Software 0.34.0 or later');
  });

  it('asks before uploading an empty DAGs folder; declining or having no terminal stops the deploy', async () => {
    const declined = harness({ dagFiles: 0, confirm: false });
    expect((await failure(deployToSoftware(request({ deploymentId: 'dag', mode: 'dags' }), declined.ports))).message).toBe(
      'no DAGs found in the dags folder. User canceled the operation',
    );
    expect(declined.questions).toEqual(['Warning: No DAGs found. This will delete any existing DAGs. Are you sure you want to deploy?']);
    expect(declined.calls).not.toContain('upload');
    const ci = await failure(deployToSoftware(request({ deploymentId: 'dag', mode: 'dags' }), harness({ dagFiles: 0, confirm: 'no-terminal' }).ports));
    expect(ci).toBeInstanceOf(NeedsInputError);
    expect((ci as NeedsInputError).missing).toEqual(['--force']);
    const forced = harness({ dagFiles: 0 });
    await deployToSoftware(request({ deploymentId: 'dag', mode: 'dags', force: true }), forced.ports);
    expect(forced.calls).toContain('upload');
  });
});

describe('--image', () => {
  it('is refused for image Deployments before anything is built', async () => {
    const h = harness();
    expect((await failure(deployToSoftware(request({ deploymentId: 'img', mode: 'image' }), h.ports))).message).toBe(IMAGE_FLAG_ON_IMAGE_DEPLOYMENT);
    expect(h.calls).not.toContain('build');
  });

  it('pushes the image of DAG-only, NFS and git-sync Deployments and says the DAGs were not deployed', async () => {
    for (const id of ['dag', 'nfs', 'git']) {
      const h = harness();
      const result = await deployToSoftware(request({ deploymentId: id, mode: 'image' }), h.ports);
      expect(h.calls).toContain('push');
      expect(h.calls).not.toContain('upload');
      expect(notices(h.events)).toContain(IMAGE_FLAG_SKIPS_DAGS);
      expect(result.dags.delivery).toBe('not-deployed');
    }
  });
});

describe('choosing the Deployment', () => {
  it('needs a workspace, an existing one, and Deployments in it', async () => {
    expect((await failure(deployToSoftware(request({ contextWorkspaceId: undefined }), harness().ports))).message).toBe(NO_WORKSPACE);
    expect((await failure(deployToSoftware(request(), harness({ workspace: false }).ports))).message).toBe(`no workspaces with id (${WS}) found`);
    expect((await failure(deployToSoftware(request(), harness({ deployments: [] }).ports))).message).toBe('no airflow deployments found');
  });

  it('refuses an id that is not in the workspace, and finds Deployments by label or release name', async () => {
    const error = await failure(deployToSoftware(request({ deploymentId: 'elsewhere' }), harness().ports));
    expect(error.message).toBe('please specify a valid deployment ID');
    expect((error as UserError).nextStep).toContain('label-img (img)');
    expect((await deployToSoftware(request({ deploymentName: 'label-nfs' }), harness().ports)).deploymentId).toBe('nfs');
    expect((await deployToSoftware(request({ deploymentName: 'rel-git' }), harness().ports)).deploymentId).toBe('git');
  });

  it('uses the saved Deployment unless --prompt, and prompts (or needs input) otherwise', async () => {
    expect((await deployToSoftware(request({ savedDeploymentId: 'nfs' }), harness().ports)).deploymentId).toBe('nfs');
    const prompted = harness({ chooseIndex: 0 });
    // Choices are sorted by label: label-dag comes first.
    expect((await deployToSoftware(request({ savedDeploymentId: 'nfs', prompt: true }), prompted.ports)).deploymentId).toBe('dag');
    const ci = await failure(deployToSoftware(request(), harness().ports));
    expect(ci).toBeInstanceOf(NeedsInputError);
    expect((ci as NeedsInputError).missing).toEqual(['<deployment-id>', '--deployment-name']);
    const saved = harness();
    await deployToSoftware(request({ deploymentId: 'img', save: true }), saved.ports);
    expect(saved.calls).toContain('save img');
  });
});

describe('older platforms', () => {
  it('warns about a FROM tag the Deployment does not accept, and stops when the user declines', async () => {
    const d = deployment('img', 'image', { desiredAirflowVersion: '2.10.5' });
    const h = harness({
      version: '0.28.0',
      deployments: [d],
      dockerfileTag: '2.9.3-onbuild',
      deploymentConfig: { airflowImages: [{ version: '2.10.5', tag: '2.10.5-onbuild' }] },
    });
    expect((await failure(deployToSoftware(request({ deploymentId: 'img' }), h.ports))).message).toBe('Canceling deploy...');
    expect(h.questions[0]).toContain("WARNING! You are about to push an image using the '2.9.3-onbuild' tag.");
    expect(h.calls).not.toContain('build');

    const ok = harness({
      version: '0.28.0',
      deployments: [d],
      dockerfileTag: '2.10.5-onbuild',
      deploymentConfig: { airflowImages: [{ version: '2.10.5', tag: '2.10.5-onbuild' }] },
    });
    await deployToSoftware(request({ deploymentId: 'img' }), ok.ports);
    expect(ok.questions).toEqual([]);
  });
});

describe('interruption', () => {
  it('says what reached the platform when stopped after the push', async () => {
    const h = harness({ abortOn: 'push' });
    const error = await failure(deployToSoftware(request({ deploymentId: 'dag' }), h.ports));
    expect(error).toBeInstanceOf(InterruptedError);
    expect(error.message).toContain('registry.example.com/rel-dag/airflow:deploy-7 was pushed');
    expect(h.calls).not.toContain('upload');
  });
});
