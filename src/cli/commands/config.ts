import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { UserError } from '../../errors.js';

export function registerConfig(program: Command, ctx: () => CommandContext): void {
  const config = program.command('config').description('Read and change astro settings (project .astro/config.yaml, or global with -g)');

  config
    .command('get')
    .description('Print the effective value of a setting (project, else global, else default)')
    .argument('<key>', 'setting name, e.g. project.deployment or cloud.api.protocol')
    .action(async (key: string) => {
      const { out, loadConfig } = ctx();
      const cfg = await loadConfig();
      const value = cfg.get(key);
      if (value === undefined) throw new UserError(`Unknown setting "${key}".`);
      out.result(value);
      out.setDocument({ key: key.toLowerCase(), value });
    });

  config
    .command('set')
    .description('Change a setting')
    .argument('<key>', 'setting name')
    .argument('<value>', 'new value')
    .option('-g, --global', 'write the global config (~/.astro/config.yaml) instead of the project one')
    .action(async (key: string, value: string, opts: { global?: boolean }) => {
      const { out, loadConfig } = ctx();
      const cfg = await loadConfig();
      const scope = opts.global || !cfg.paths.projectFile ? 'global' : 'project';
      if (scope === 'project' && !cfg.hasProjectFile) {
        throw new UserError('This directory is not an Astro project (no .astro/config.yaml).', {
          nextStep: 'Run the command inside your Astro project, or pass --global.',
        });
      }
      await cfg.setSetting(key, value, scope);
      out.result(`Setting ${key.toLowerCase()} set to ${value} in the ${scope} config.`);
      out.setDocument({ key: key.toLowerCase(), value, scope });
    });
}
