import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { cliVersion } from '../../version.js';

interface ListFlags {
  workspaceId?: string;
  all?: boolean;
}

export function registerDeployment(program: Command, ctx: () => CommandContext): void {
  const deployment = program.command('deployment').aliases(['de', 'deployments']).description('Inspect the Deployments of your Astro workspace');

  deployment
    .command('list')
    .alias('ls')
    .description('List the Deployments of the current workspace (or of the whole organization with --all)')
    .option('--workspace-id <id>', 'list this workspace instead of the current one')
    .option('-a, --all', 'list every workspace of the organization')
    .action(async (flags: ListFlags) => {
      const { out, env, signal, loadConfig } = ctx();
      const { openAstroSession } = await import('../../auth/astro-access.js');
      const config = await loadConfig();
      const { session, client } = await openAstroSession(config, env, {
        clientVersion: cliVersion(),
        addSecret: (s) => out.addSecret(s),
        notice: (m) => out.info(m),
        warn: (m) => out.warn(m),
        signal,
      });
      await ctx().apiOrigin.remember(session.restBaseUrl);
      const workspaceId = flags.all ? undefined : (flags.workspaceId ?? session.workspaceId);
      const deployments = await client.listDeployments(session.organizationId, workspaceId ? { workspaceIds: [workspaceId] } : {}, signal);
      const rows = deployments.map((d) => ({
        name: d.name,
        namespace: d.namespace,
        id: d.id,
        workspaceId: d.workspaceId,
        runtimeVersion: d.runtimeVersion,
        status: d.status,
        dagDeployEnabled: d.isDagDeployEnabled,
      }));
      out.setDocument({ organizationId: session.organizationId, workspaceId: workspaceId ?? null, deployments: rows });
      if (rows.length === 0) {
        out.result(workspaceId ? `No Deployments in workspace ${workspaceId}.` : 'No Deployments in this organization.');
        return;
      }
      const table = [
        ['NAME', 'NAMESPACE', 'DEPLOYMENT ID', 'RUNTIME', 'STATUS', 'DAG DEPLOY'],
        ...rows.map((r) => [r.name, r.namespace, r.id, r.runtimeVersion, r.status, r.dagDeployEnabled ? 'enabled' : 'disabled']),
      ];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table)
        out.result(
          row
            .map((cell, i) => cell.padEnd(widths[i]!))
            .join('  ')
            .trimEnd(),
        );
    });
}
