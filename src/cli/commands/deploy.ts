import { Option, type Command } from 'commander';
import type { CommandContext } from '../context.js';
import { NotImplementedError } from '../../errors.js';

export interface DeployFlags {
  deploymentName?: string;
  workspaceId?: string;
  force?: boolean;
  prompt?: boolean;
  save?: boolean;
  pytest?: boolean;
  test?: string;
  parse?: boolean;
  env?: string;
  imageName?: string;
  dags?: boolean;
  image?: boolean;
  dagsPath?: string;
  description?: string;
  wait?: boolean;
  waitTime?: string;
  buildSecrets?: string[];
  remote?: boolean;
  runtimeVersion?: string;
}

export function registerDeploy(program: Command, ctx: () => CommandContext): void {
  program
    .command('deploy')
    .description('Deploy your Astro project (image and/or DAGs) to a Deployment')
    .argument('[deployment-id]', 'the Deployment to deploy to (else --deployment-name, the saved project Deployment, or a prompt)')
    .option('-n, --deployment-name <name>', 'name of the Deployment to deploy to')
    .option('--workspace-id <id>', 'Workspace of the Deployment (defaults to the current context\'s)')
    .option('-f, --force', 'deploy even if the DAGs fail to parse or the git tree is dirty')
    .option('-p, --prompt', 'always choose the Deployment from a list, ignoring the saved one')
    .option('-s, --save', 'remember the chosen Deployment for this project')
    .option('--pytest', 'run the project\'s pytests before deploying')
    .option('-t, --test <file>', 'run this pytest file before deploying (implies --pytest)')
    .option('--parse', 'parse the DAGs even on a DAG-only deploy')
    .option('-e, --env <file>', 'env file for parse and pytest', '.env')
    .option('-i, --image-name <image>', 'deploy this prebuilt local image instead of building one (must be linux/amd64)')
    .option('--dags', 'deploy only the dags/ folder')
    .option('--image', 'deploy only the image, not the dags/ folder')
    .option('--dags-path <path>', 'folder to deploy as DAGs (default: <project>/dags)')
    .option('--description <text>', 'description of this deploy')
    .option('-w, --wait', 'wait until the Deployment is healthy')
    .option('--wait-time <duration>', 'how long --wait waits (e.g. 300s, 5m)')
    .option('-b, --build-secrets <spec...>', 'build secrets passed to the image build (id=...,src=...)')
    .addOption(new Option('--remote', 'Software: only update the Deployment image to --image-name (no build, no push)'))
    .addOption(new Option('--runtime-version <version>', 'Software with --remote: the Runtime version of --image-name'))
    .addHelpText('after', [
      '',
      'Examples:',
      '  astro deploy                         choose a Deployment and deploy image and DAGs',
      '  astro deploy <deployment-id> --dags  upload only the dags/ folder',
      '  astro deploy -n prod --wait --json   deploy to "prod", wait until healthy, print a JSON summary',
      '  ASTRO_API_TOKEN=... astro deploy <deployment-id> --image-name my-image:1.2',
    ].join('\n'))
    .action(async () => {
      ctx();
      throw new NotImplementedError('deploy');
    });
}
