import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { NotImplementedError } from '../../errors.js';

export function registerDev(program: Command, ctx: () => CommandContext): void {
  const dev = program.command('dev').description('Check your Astro project locally');

  dev
    .command('parse')
    .description('Check the DAGs for import errors, as Airflow\'s DagBag would')
    .option('-i, --image-name <image>', 'parse inside this image instead of on the host')
    .option('--python <path>', 'Python interpreter with Airflow installed (host mode)')
    .option('-e, --env <file>', 'env file the DAGs see', '.env')
    .option('--no-cache', 'parse every file again, ignoring cached results')
    .action(async () => {
      ctx();
      throw new NotImplementedError('dev parse');
    });

  dev
    .command('pytest')
    .description('Run the project\'s pytests')
    .argument('[path]', 'test file or folder (default: tests/)')
    .option('-i, --image-name <image>', 'run inside this image instead of on the host')
    .option('--python <path>', 'Python interpreter with Airflow and pytest installed (host mode)')
    .option('-a, --args <args>', 'extra arguments for pytest')
    .option('-e, --env <file>', 'env file the tests see', '.env')
    .action(async () => {
      ctx();
      throw new NotImplementedError('dev pytest');
    });
}
