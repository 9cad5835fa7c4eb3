import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { UserError } from '../../errors.js';

export function registerConfig(program: Command, ctx: () => CommandContext): void {
  const config = program.command('config').description('Read and change astro settings (project .astro/config.yaml, or global with -g)');

  config
    .command('get')
    .description('Print a setting as "key: value": its effective value (project, else global, else default), or the global one with -g')
    .argument('<key>', 'setting name, e.g. project.deployment or cloud.api.protocol')
    .option('-g, --global', 'read the global config (~/.astro/config.yaml) only')
    .action(async (key: string, opts: { global?: boolean }) => {
      const { out, loadConfig } = ctx();
      const cfg = await loadConfig();
      const k = key.toLowerCase();
      if (k === 'contexts' || k.startsWith('contexts.')) {
        throw new UserError(`"${key}" is not a single setting.`, { nextStep: 'Run astro context list to see the contexts.' });
      }
      const value = k === 'context' ? (cfg.currentDomain() ?? '') : opts.global ? cfg.getFrom(k, 'global') : cfg.get(k);
      if (value === undefined) throw new UserError(`Unknown setting "${key}".`);
      out.result(`${k}: ${value}`);
      out.setDocument({ key: k, value, scope: opts.global ? 'global' : 'effective' });
    });

  config
    .command('set')
    .description('Change a setting (in the project config, or the global one with -g or outside a project)')
    .argument('<key>', "setting name (any of Astronomer's CLI, e.g. show_warnings, or ours: parse.python, login.callback_port)")
    .argument('<value>', 'new value')
    .option('-g, --global', 'write the global config (~/.astro/config.yaml) instead of the project one')
    .action(async (key: string, value: string, opts: { global?: boolean }) => {
      const { out, loadConfig } = ctx();
      const cfg = await loadConfig();
      const k = key.toLowerCase();
      const scope = opts.global || !cfg.paths.projectFile || k === 'context' ? 'global' : 'project';
      if (scope === 'project' && !cfg.hasProjectFile) {
        throw new UserError('This directory is not an Astro project (no .astro/config.yaml).', {
          nextStep: 'Run the command inside your Astro project, or pass --global.',
        });
      }
      await cfg.setSetting(k, value, scope);
      out.result(`Setting ${k} set to ${value} in the ${scope} config.`);
      out.setDocument({ key: k, value, scope });
    });
}
