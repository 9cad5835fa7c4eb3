import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { UsageError } from '../../errors.js';
import { confirm, select } from '../../ui/prompt.js';

export function registerContext(program: Command, ctx: () => CommandContext): void {
  const context = program.command('context').alias('c').description('Manage the platforms (contexts) astro is logged in to');

  context
    .command('list')
    .alias('ls')
    .description('List contexts; the current one is marked with *')
    .action(async () => {
      const { out, env, loadConfig } = ctx();
      const cfg = await loadConfig();
      const current = cfg.currentDomain(env.domain);
      const rows = cfg.contexts().map((c) => ({
        domain: c.domain,
        current: c.domain === current,
        organization: c.organization ?? '',
        workspace: c.workspace ?? '',
        user: c.user_email ?? '',
      }));
      if (rows.length === 0) out.result('No contexts yet. Run astro login to create one.');
      for (const row of rows) {
        out.result(`${row.current ? '*' : ' '} ${row.domain}${row.user ? `  (${row.user})` : ''}`);
      }
      out.setDocument({ contexts: rows });
    });

  context
    .command('switch')
    .alias('sw')
    .description('Make another context the current one')
    .argument('[domain]', 'domain of the context')
    .action(async (domain: string | undefined) => {
      const { out, loadConfig } = ctx();
      const cfg = await loadConfig();
      const target =
        domain ??
        (await select(
          out,
          'Choose a context',
          cfg.contexts().map((c) => ({ label: c.domain, value: c.domain })),
          ['<domain>'],
          ctx().signal,
        ));
      const switched = await cfg.switchContext(target);
      out.result(`Switched to ${switched.domain}`);
      out.setDocument({ context: switched.domain });
    });

  context
    .command('delete')
    .alias('de')
    .description('Delete a context and its stored credentials (the current one only after a confirmation, or with -f)')
    .argument('<domain>', 'domain of the context')
    .option('-f, --force', 'do not ask before deleting the current context')
    .action(async (domain: string, flags: { force?: boolean }) => {
      const { out, env, signal, loadConfig } = ctx();
      const cfg = await loadConfig();
      if (!domain.trim()) throw new UsageError('A domain is required.');
      const target = cfg.context(domain);
      if (target && !flags.force && target.domain === cfg.currentDomain(env.domain)) {
        const sure = await confirm(out, `${target.domain} is the current context. Delete it and its credentials?`, ['--force'], signal);
        if (!sure) {
          out.result(`Kept context ${target.domain}`);
          out.setDocument({ deleted: null });
          return;
        }
      }
      await cfg.deleteContext(domain);
      out.result(`Deleted context ${domain}`);
      out.setDocument({ deleted: domain });
    });
}
