import { statSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import type { CommandContext } from '../context.js';
import type { AstroConfig } from '../../config/store.js';
import type { AstroEnv } from '../../env.js';
import { UsageError, UserError } from '../../errors.js';
import { checkEnvFile } from '../env-file.js';
import { NOT_AN_ASTRO_PROJECT } from '../../parse/project.js';
import type { DeployPlan } from '../../deploy/astro/plan.js';

export interface DeployFlags {
  deploymentName?: string;
  workspaceId?: string;
  force?: boolean;
  prompt?: boolean;
  save?: boolean;
  pytest?: boolean;
  test?: string;
  parse?: boolean;
  env: string;
  imageName?: string;
  dags?: boolean;
  image?: boolean;
  dagsPath?: string;
  description?: string;
  wait?: boolean;
  waitTime?: string;
  buildSecrets?: string[];
  buildSecret?: string[];
  /** commander's name for --no-dags-base-dir (default true). */
  dagsBaseDir: boolean;
  /** commander's name for --no-cache (default true). */
  cache: boolean;
  dagBundleName?: string;
  forceUpgradeToAf3?: boolean;
  remote?: boolean;
  runtimeVersion?: string;
  shaAsTag?: boolean;
  dryRun?: boolean;
}

const UNCOMMITTED_CHANGES = 'Project directory has uncommitted changes, use `astro deploy [deployment-id] -f` to force deploy.';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Flag combinations Astronomer's CLI refuses, refused the same way (but as usage errors, exit 2). */
export function validateDeployFlags(flags: DeployFlags): void {
  if (flags.waitTime !== undefined && !flags.wait) throw new UsageError('cannot use --wait-time with --wait=false');
  if (flags.dags && flags.image) {
    throw new UsageError("cannot use both --dags and --image together. Run 'astro deploy' to update both your image and dags");
  }
  if (flags.imageName) {
    const conflicts: [string, unknown][] = [
      ['dags', flags.dags],
      ['dags-path', flags.dagsPath],
      ['pytest', flags.pytest || flags.test],
      ['parse', flags.parse],
      ['build-secrets', flags.buildSecrets?.length || flags.buildSecret?.length],
      ['no-dags-base-dir', !flags.dagsBaseDir],
      ['dag-bundle-name', flags.dagBundleName],
    ];
    for (const [name, set] of conflicts) {
      if (set) throw new UsageError(`cannot use --${name} with --image-name; --image-name implies an image-only deploy`);
    }
  }
  if (flags.remote && !flags.imageName) throw new UsageError('--image-name is mandatory when --remote flag is passed');
  if (flags.dagBundleName !== undefined && flags.image) {
    throw new UsageError('cannot use --dag-bundle-name with --image; named DAG bundles apply only to deploys that include DAGs');
  }
}

/** Build secrets: the flags (both spellings), else BUILD_SECRET_INPUT, one per line, as Astronomer's CLI reads it. */
function buildSecrets(flags: DeployFlags, env: AstroEnv): string[] {
  const given = [...(flags.buildSecret ?? []), ...(flags.buildSecrets ?? [])];
  return given.length > 0 ? given : env.buildSecretInput;
}

/** The part of a deploy request that Astro and Software deploys read from the same flags and settings. */
function commonRequest(flags: DeployFlags, config: AstroConfig, env: AstroEnv) {
  return {
    deploymentName: flags.deploymentName,
    workspaceFlag: flags.workspaceId,
    savedDeploymentId: config.get('project.deployment') || undefined,
    prompt: flags.prompt ?? false,
    save: flags.save ?? false,
    mode: flags.dags ? 'dags' : flags.image ? 'image' : 'full',
    imageName: flags.imageName,
    dagsPath: flags.dagsPath,
    force: flags.force ?? false,
    skipParse: env.skipParse || config.getBool('skip_parse'),
    pytest: flags.pytest || flags.test ? { file: flags.test } : undefined,
    envFile: flags.env,
    description: flags.description,
    buildSecrets: buildSecrets(flags, env),
    showWarnings: config.getBool('show_warnings'),
    noCache: !flags.cache,
    dagsBaseDir: flags.dagsBaseDir,
  } as const;
}

export function registerDeploy(program: Command, ctx: () => CommandContext): void {
  program
    .command('deploy')
    .description('Deploy your Astro project (image and/or DAGs) to a Deployment')
    .argument('[deployment-id]', 'the Deployment to deploy to (else --deployment-name, the saved project Deployment, or a prompt)')
    .option('-n, --deployment-name <name>', 'name of the Deployment to deploy to')
    .option('--workspace-id <id>', "Workspace of the Deployment (defaults to the current context's)")
    .option('-f, --force', 'deploy even if the DAGs fail to parse, or the dags folder is empty')
    .option('-p, --prompt', 'always choose the Deployment from a list, ignoring the saved one')
    .option('-s, --save', 'remember the chosen Deployment for this project')
    .option('--pytest', "run the project's pytests before deploying")
    .option('-t, --test <file>', 'run this pytest file before deploying (implies --pytest)')
    .option('--parse', 'parse the DAGs (astro always does when DAGs ship; accepted for compatibility)')
    .option('-e, --env <file>', 'env file for parse and pytest', '.env')
    .option('-i, --image-name <image>', 'deploy this prebuilt local image instead of building one (must be linux/amd64)')
    .option('-d, --dags', 'deploy only the dags/ folder')
    .option('--image', 'deploy only the image, not the dags/ folder')
    .option('--dags-path <path>', 'folder to deploy as DAGs (default: <project>/dags)')
    .option('--description <text>', 'description of this deploy')
    .option('-w, --wait', 'wait until the Deployment is healthy')
    .option('--wait-time <duration>', 'how long --wait waits (e.g. 300s, 5m; default 5m)')
    .option('--build-secret <spec>', 'a build secret for the image build (id=...,src=... or id=...,env=...); repeatable', collect)
    .option('-b, --build-secrets <spec...>', 'build secrets, several after one flag (same as --build-secret)')
    .option('--no-cache', 'build the image without the build cache, and bundle the DAGs without the bundle kept from before')
    .option('--no-dags-base-dir', 'bundle the DAGs without the dags/ prefix (Airflow 3 Deployments whose sys.path is the bundle root)')
    .addOption(new Option('--dag-bundle-name <name>', 'deploy the DAGs to this named DAG bundle of the Deployment (Airflow 3)').hideHelp())
    .addOption(new Option('--force-upgrade-to-af3', 'no longer needed for Airflow 2 to 3 upgrades (accepted for compatibility)').hideHelp())
    .addOption(new Option('--remote', 'Software: only update the Deployment image to --image-name (no build, no push)'))
    .addOption(new Option('--runtime-version <version>', 'Software with --remote: the Runtime version of --image-name'))
    .option('--dry-run', 'print the plan (what would be built, pushed and uploaded, and why) and change nothing')
    .addOption(new Option('--sha-as-tag', 'Software custom registry: name the pushed image by its sha256 digest in the image update (config sha_as_tag)'))
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  astro deploy                         choose a Deployment and deploy image and DAGs',
        '  astro deploy <deployment-id> --dags  upload only the dags/ folder',
        '  astro deploy -n prod --wait --json   deploy to "prod", wait until healthy, print a JSON summary',
        '  ASTRO_API_TOKEN=... astro deploy <deployment-id> --image-name my-image:1.2',
        '  astro deploy <deployment-id> --dry-run  show what would ship and why, without deploying',
        '',
        'An unchanged project is not deployed again (--force deploys anyway); when only dags/ changed and the',
        'Deployment has DAG deploys on, only the DAGs are deployed.',
      ].join('\n'),
    )
    .action(async (deploymentId: string | undefined, flags: DeployFlags) => {
      const { out, env, cwd, signal, loadConfig } = ctx();
      validateDeployFlags(flags);
      if (flags.forceUpgradeToAf3) out.warn('--force-upgrade-to-af3 is no longer needed for Airflow 2 to Airflow 3 upgrades; it has no effect.');
      const projectDir = cwd;
      // `git` and the config files are read while the modules below load; their verdicts are taken in order further down.
      const uncommittedTask =
        !flags.force && !flags.dryRun
          ? import('../../deploy/kernel/git.js').then(({ hasUncommittedChanges }) => hasUncommittedChanges(projectDir, env.raw))
          : Promise.resolve(false);
      const configTask = loadConfig();
      uncommittedTask.catch(() => undefined);
      configTask.catch(() => undefined);
      const [{ parseDuration }, { resolveAstroSession }, { platformOf, deploymentViewUrl }] = await Promise.all([
        import('../../deploy/astro/wait.js'),
        import('../../auth/session.js'),
        import('../../platform/domain.js'),
      ]);
      let waitMs: number | undefined;
      if (flags.wait) {
        waitMs = parseDuration(flags.waitTime ?? '5m');
        if (waitMs === undefined || waitMs <= 0) throw new UsageError(`--wait-time: "${flags.waitTime}" is not a duration (e.g. 300s, 5m, 1h).`);
      }
      // Like Astronomer's CLI: a prebuilt image, or DAGs from --dags-path alone, need no project around them.
      const isProject = statSync(path.join(projectDir, '.astro', 'config.yaml'), { throwIfNoEntry: false })?.isFile() === true;
      const dagsOnlyFromPath = flags.dags && flags.dagsPath !== undefined && !flags.pytest && !flags.test;
      if (!isProject && !flags.imageName && !dagsOnlyFromPath) throw new UserError(NOT_AN_ASTRO_PROJECT);
      if (isProject) await checkEnvFile(projectDir, flags.env);
      // Like Astronomer's CLI, uncommitted changes stop a deploy unless forced (but ours exits 1: nothing was deployed).
      if (await uncommittedTask) throw new UserError(UNCOMMITTED_CHANGES);

      const config = await configTask;
      const domain = config.currentDomain(env.domain);
      const ciCredentials = env.apiToken !== undefined || (env.apiKeyId !== undefined && env.apiKeySecret !== undefined);
      if (platformOf(domain, { localPlatform: config.get('local.platform'), apiToken: ciCredentials }) === 'software') {
        await deployToSoftwareContext(deploymentId, flags, ctx(), config, domain!);
        return;
      }
      const stored = config.currentContext(env.domain);
      out.addSecret(stored?.token);
      out.addSecret(stored?.refreshtoken);
      const session = await resolveAstroSession(config, env, { notice: (m) => out.info(m), warn: (m) => out.warn(m), signal });
      out.addSecret(session.token);
      await ctx().apiOrigin.remember(session.restBaseUrl);
      out.info(session.domain === 'astronomer.io' ? 'Authenticated to Astro \n' : `Authenticated to ${session.domain} \n`);

      const [{ deployToAstro }, { createDeployPorts }, { createDeployView }] = await Promise.all([
        import('../../deploy/astro/deploy.js'),
        import('../../deploy/astro/wiring.js'),
        import('../deploy-view.js'),
      ]);
      const view = createDeployView(out);
      const ports = createDeployPorts({ session, config, env, out, projectDir, signal, emit: view.emit });
      let result;
      try {
        result = await deployToAstro(
          {
            projectDir,
            deploymentId,
            ...commonRequest(flags, config, env),
            // Outside a project there is no Airflow setup to parse --dags-path in (Astronomer's CLI does not parse it either).
            ...(isProject ? {} : { skipParse: true }),
            wait: waitMs === undefined ? undefined : { timeoutMs: waitMs, intervalMs: 2_000 },
            gitMetadata: config.getBool('deploy.git_metadata'),
            autoSelect: session.isApiToken || config.getBool('auto_select'),
            dagBundleName: flags.dagBundleName,
            dryRun: flags.dryRun ?? false,
          },
          ports,
        );
      } finally {
        view.close();
      }

      const deploymentView = deploymentViewUrl(session.domain, result.workspaceId, result.deploymentId);
      if ('dryRun' in result) {
        printPlan(out, result.plan);
        out.setDocument({ ...result, deploymentUrl: deploymentView });
        return;
      }
      if ('noop' in result) {
        out.result(`Deployment ${result.deploymentName} already runs this project (deploy ${result.deployId}, ${result.deployedAt ?? 'time unknown'})`);
        out.result('Nothing was built, pushed or uploaded; pass --force to deploy anyway.');
        out.setDocument({ ...result, deploymentUrl: deploymentView });
        return;
      }
      if (result.type === 'DAG_ONLY') {
        out.result(`Successfully uploaded DAGs with version ${result.dags?.version} to Astro.`);
      } else {
        out.result(
          `Successfully pushed image ${result.image?.repository}:${result.image?.tag} to Astronomer registry${result.dags ? ` and uploaded DAGs with version ${result.dags.version}` : ''}.`,
        );
      }
      out.result(`Deployment: ${result.deploymentName} (${result.deploymentId})  deploy ${result.deployId}  status ${result.status}`);
      out.result(`Deployment View: ${deploymentView}`);
      if (result.status === 'DEPLOYING') {
        out.result('The Deployment is updating; run again with --wait to wait until it is healthy, or check the Deployment View.');
      }
      out.setDocument({ ...result, deploymentUrl: deploymentView });
    });
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The --dry-run plan: the decision, then one line per step with its digest and size. */
function printPlan(out: CommandContext['out'], plan: DeployPlan): void {
  const { decision } = plan;
  const verdict = decision.action === 'noop' ? 'no deploy (nothing changed)' : `${decision.type} deploy${decision.automatic ? ' (chosen by the plan)' : ''}`;
  out.result(`Plan for ${plan.deployment.name} (${plan.deployment.id}): ${verdict} — ${decision.why}`);
  if (plan.deployed.latest) out.result(`  runs now: deploy ${plan.deployed.latest.deployId}${plan.deployed.latest.at ? ` (${plan.deployed.latest.at})` : ''}`);
  const running = plan.deployed.image;
  if (running?.imageDigest) out.result(`  image:    ${plan.deployment.imageTag ?? ''} ${running.imageDigest} (deploy ${running.deployId})`);
  for (const step of plan.steps) {
    const extra = [step.digest ? step.digest.slice(0, 19) : '', step.bytes !== undefined ? formatBytes(step.bytes) : ''].filter(Boolean).join(', ');
    out.result(`  ${step.phase.padEnd(9)} ${step.action.padEnd(4)} ${step.detail}${extra ? ` [${extra}]` : ''}`);
  }
  out.result('Dry run: nothing was sent to the platform.');
}

/** The Software (Houston) deploy: any non-Astro context, unless ASTRO_API_TOKEN says Astro. */
async function deployToSoftwareContext(
  deploymentId: string | undefined,
  flags: DeployFlags,
  { out, env, cwd, signal, apiOrigin }: CommandContext,
  config: AstroConfig,
  domain: string,
): Promise<void> {
  if (flags.dryRun) throw new UsageError('--dry-run plans Astro deploys only; Astronomer Software deploys cannot be planned yet.');
  if (flags.remote && !flags.runtimeVersion) throw new UsageError("if --image-name and --remote is passed, it's mandatory to pass --runtime-version");
  if (flags.wait) {
    throw new UsageError('--wait is not available for Astronomer Software Deployments: Houston rolls out the new code after astro deploy returns.');
  }
  const token = config.context(domain)?.token;
  if (!token) throw new UserError(`There is no token for ${domain}: you are not logged in to it.`, { nextStep: `Run astro login ${domain}` });
  out.addSecret(token);

  const [{ houstonSettings }, { houstonUrl }, { deployToSoftware }, { createSoftwarePorts }, { createDeployView }] = await Promise.all([
    import('../../auth/software-login.js'),
    import('../../platform/domain.js'),
    import('../../deploy/software/deploy.js'),
    import('../../deploy/software/wiring.js'),
    import('../deploy-view.js'),
  ]);
  const url = houstonUrl(domain, houstonSettings(config));
  await apiOrigin.remember(url);
  out.info(`Authenticated to ${domain} \n`);

  const view = createDeployView(out);
  const ports = createSoftwarePorts({ config, env, out, projectDir: cwd, signal, emit: view.emit, houstonUrl: url, token });
  let result;
  try {
    result = await deployToSoftware(
      {
        projectDir: cwd,
        domain,
        deploymentId,
        ...commonRequest(flags, config, env),
        contextWorkspaceId: config.context(domain)?.workspace || undefined,
        autoSelect: config.getBool('auto_select'),
        ...(flags.remote ? { remote: { runtimeVersion: flags.runtimeVersion! } } : {}),
        shaAsTag: (flags.shaAsTag ?? false) || config.getBool('sha_as_tag'),
      },
      ports,
    );
  } finally {
    view.close();
  }

  const name = result.label ? `${result.label} (${result.releaseName})` : result.releaseName;
  const image = result.image;
  if (image?.registry === 'remote') {
    out.result(`Deployment ${name} now runs ${image.updatedTo}.`);
  } else if (image?.registry === 'custom') {
    out.result(`Pushed ${image.pushedAs} to the custom registry and updated ${name} to run ${image.updatedTo}.`);
  } else if (image) {
    out.result(
      'Successfully pushed Docker image to the APC registry, it can take a few minutes to update the deployment with the new image. ' +
        `Navigate to the APC UI to confirm the state of your deployment${result.airflowUrl ? ` (${result.airflowUrl})` : ''}.`,
    );
  }
  if (result.dags.delivery === 'dag-server') {
    out.result(`Uploaded DAGs (${result.dags.dagFiles} DAG files) to the DAG server of ${name}.`);
  }
  out.setDocument(result);
}
