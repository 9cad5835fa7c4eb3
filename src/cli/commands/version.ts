import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { cliVersion } from '../../version.js';

export function registerVersion(program: Command, ctx: () => CommandContext): void {
  program
    .command('version')
    .description('Show the version of astro')
    .action(() => {
      const { out } = ctx();
      const version = cliVersion();
      out.result(`Astro CLI Version: ${version}`);
      out.setDocument({ version });
    });
}
