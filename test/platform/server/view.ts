/**
 * The Deployment View: a small stand-in for the Astro UI pages a deploy links to. Both CLIs print
 * `localhost:5000/<workspaceId>/deployments/<deploymentId>` for the `localhost` domain, so on the demo ports this
 * listener answers there. Pages: organizations and workspaces (`/`), a workspace's Deployments (`/<workspaceId>`),
 * and a Deployment (status, Docker image, DAG bundle version, deploy history), rendered from the same model the REST
 * API answers from. Read-only and unauthenticated: it binds 127.0.0.1 like every listener of the platform.
 */
import type { Platform } from '../platform.js';
import type { SeedDeployment, SeedWorkspace } from '../seed.js';
import type { DeployRecord } from '../state.js';
import { escapeHtml as esc } from './rest.js';
import { sendHtml, type RequestContext, type Router } from './http.js';

const style = `
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d1d2b; background: #f6f6fa; }
  header { background: #1d1d2b; color: #fff; padding: 10px 24px; }
  header a { color: #fff; text-decoration: none; font-weight: 600; }
  main { padding: 16px 24px; max-width: 1200px; }
  nav.crumbs { margin-bottom: 12px; color: #555; }
  h1 { font-size: 22px; margin: 4px 0 12px; }
  h2 { font-size: 16px; margin: 20px 0 8px; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e3e3ec; vertical-align: top; }
  th { background: #eeeef5; font-weight: 600; }
  dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; background: #fff; padding: 12px 16px; margin: 0; }
  dl.facts dt { color: #555; }
  dl.facts dd { margin: 0; }
  code { font: 12px ui-monospace, monospace; }
  td code { white-space: nowrap; }
  .status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
  .HEALTHY, .DEPLOYED { background: #d8f5e0; color: #13632f; }
  .DEPLOYING, .INITIALIZED, .CREATING { background: #fff1c9; color: #7a5600; }
  .UNHEALTHY, .FAILED { background: #fde0e0; color: #8a1414; }
  .HIBERNATING, .UNKNOWN { background: #e6e6ee; color: #444; }
  .muted { color: #777; }
`;

function page(title: string, crumbs: [string, string?][], body: string, refresh = false): string {
  const trail = crumbs.map(([label, href]) => (href ? `<a href="${esc(href)}">${esc(label)}</a>` : esc(label))).join(' / ');
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Astro (local)</title>` +
    (refresh ? '<meta http-equiv="refresh" content="2">' : '') +
    `<style>${style}</style></head><body><header><a href="/">Astro · local platform</a></header><main>` +
    `<nav class="crumbs">${trail}</nav>${body}</main></body></html>`
  );
}

function status(value: string): string {
  return `<span class="status ${esc(value)}" data-status="${esc(value)}">${esc(value)}</span>`;
}

function orNone(value: string | undefined): string {
  return value ? `<code>${esc(value)}</code>` : '<span class="muted">none</span>';
}

function notFound(ctx: RequestContext, what: string): void {
  sendHtml(ctx.res, 404, page('Not found', [['Home', '/'], ['Not found']], `<h1>Not found</h1><p>${esc(what)}</p>`));
}

export function registerViewRoutes(router: Router, platform: Platform): void {
  const workspaceOf = (id: string): SeedWorkspace | undefined => platform.workspace(id);

  router.on('GET', '/', (ctx) => {
    const sections = platform.seed.organizations
      .map((org) => {
        const rows = platform.seed.workspaces
          .filter((w) => w.organizationId === org.id)
          .map((w) => {
            const count = platform.seed.deployments.filter((d) => d.workspaceId === w.id).length;
            return `<tr><td><a href="/${esc(w.id)}">${esc(w.name)}</a></td><td><code>${esc(w.id)}</code></td><td>${count}</td></tr>`;
          })
          .join('');
        return `<h2>${esc(org.name)} <span class="muted">(${esc(org.product)})</span></h2><table><tr><th>Workspace</th><th>ID</th><th>Deployments</th></tr>${rows}</table>`;
      })
      .join('');
    sendHtml(ctx.res, 200, page('Workspaces', [['Home']], `<h1>Workspaces</h1>${sections}`));
  });

  const workspacePage = (ctx: RequestContext) => {
    const ws = workspaceOf(ctx.params.ws!);
    if (!ws) return notFound(ctx, `There is no workspace ${ctx.params.ws}.`);
    const deployments = platform.seed.deployments.filter((d) => d.workspaceId === ws.id);
    const rows = deployments
      .map((d) => {
        const view = platform.deploymentView(d);
        return (
          `<tr><td><a href="/${esc(ws.id)}/deployments/${esc(d.id)}">${esc(d.name)}</a></td><td>${status(view.status)}</td>` +
          `<td>${esc(view.runtimeVersion)}</td><td>${orNone(view.imageTag)}</td><td>${orNone(view.dagTarballVersion)}</td></tr>`
        );
      })
      .join('');
    const org = platform.organization(ws.organizationId);
    sendHtml(
      ctx.res,
      200,
      page(
        ws.name,
        [['Home', '/'], [org?.name ?? ws.organizationId], [ws.name]],
        `<h1>${esc(ws.name)}</h1><p class="muted">${esc(ws.description)}</p>` +
          `<table id="deployments"><tr><th>Deployment</th><th>Status</th><th>Astro Runtime</th><th>Docker Image tag</th><th>DAG bundle version</th></tr>${rows}</table>`,
      ),
    );
  };
  router.on('GET', '/:ws', workspacePage);
  router.on('GET', '/:ws/deployments', workspacePage);

  router.on('GET', '/:ws/deployments/:dep', (ctx) => {
    const ws = workspaceOf(ctx.params.ws!);
    const d = platform.deployment(ctx.params.dep!);
    if (!ws || !d || d.workspaceId !== ws.id) return notFound(ctx, `There is no Deployment ${ctx.params.dep} in workspace ${ctx.params.ws}.`);
    sendHtml(ctx.res, 200, deploymentPage(platform, ws, d));
  });
}

function deploymentPage(platform: Platform, ws: SeedWorkspace, d: SeedDeployment): string {
  const view = platform.deploymentView(d);
  const deploys = platform.state
    .get()
    .deploys.filter((x) => x.deploymentId === d.id)
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  const image = view.imageTag ? `${view.imageRepository}:${view.imageTag}` : undefined;
  const facts: [string, string][] = [
    ['Status', status(view.status) + (view.statusReason ? ` <span id="status-reason">${esc(view.statusReason)}</span>` : '')],
    ['Deployment ID', `<code>${esc(d.id)}</code>`],
    ['Astro Runtime', `${esc(view.runtimeVersion)} <span class="muted">(Airflow ${esc(view.airflowVersion)})</span>`],
    ['Docker Image', `<span id="image-tag">${orNone(view.imageTag)}</span>${image ? ` <span class="muted">${esc(view.imageRepository)}</span>` : ''}`],
    ['DAG bundle version', `<span id="dag-bundle-version">${orNone(view.dagTarballVersion)}</span>`],
    ['DAG deploys', d.isDagDeployEnabled ? 'Enabled' : 'Disabled'],
    ['CI/CD enforcement', d.isCicdEnforced ? 'On' : 'Off'],
    ['Type', `${esc(d.type)} · ${esc(d.executor)} · ${esc(d.cloudProvider)} ${esc(d.region)}`],
    ['Airflow UI', `<a href="${esc(view.webServerUrl)}">${esc(view.webServerUrl)}</a>`],
  ];
  const history = deploys.length ? deploys.map((x) => deployRow(platform, x)).join('') : '<tr><td colspan="8" class="muted">No deploys yet.</td></tr>';
  return page(
    d.name,
    [['Home', '/'], [ws.name, `/${ws.id}`], [d.name]],
    `<h1 id="deployment-name">${esc(d.name)}</h1><p class="muted">${esc(d.description)}</p>` +
      `<dl class="facts">${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>` +
      `<h2>Deploy history</h2><table id="deploy-history"><tr><th>Deploy</th><th>Type</th><th>Status</th><th>Image tag</th>` +
      `<th>DAG bundle version</th><th>Description</th><th>Git</th><th>Deployed by · at</th></tr>${history}</table>`,
    view.status === 'DEPLOYING',
  );
}

function deployRow(platform: Platform, x: DeployRecord): string {
  const who = platform.subjectProfile(x.createdBy);
  const by = who.subjectType === 'USER' ? who.fullName : who.apiTokenName;
  const git = x.git
    ? x.git.commitUrl
      ? `<a href="${esc(x.git.commitUrl)}"><code>${esc(x.git.commitSha.slice(0, 7))}</code></a>`
      : `<code>${esc(x.git.commitSha.slice(0, 7))}</code>`
    : '<span class="muted">—</span>';
  const tag = x.type === 'DAG_ONLY' ? '<span class="muted">—</span>' : `<code>${esc(x.imageTag)}</code>`;
  return (
    `<tr data-deploy-id="${esc(x.id)}"><td><code>${esc(x.id)}</code></td><td>${esc(x.type)}</td><td>${status(x.status)}` +
    `${x.failureReason ? `<div class="muted">${esc(x.failureReason)}</div>` : ''}</td><td>${tag}</td>` +
    `<td>${x.dagTarballVersion ? `<code>${esc(x.dagTarballVersion)}</code>` : '<span class="muted">—</span>'}</td>` +
    `<td>${esc(x.description)}</td><td>${git}${x.git?.branch ? ` <span class="muted">${esc(x.git.branch)}</span>` : ''}</td>` +
    `<td>${esc(by)}<div class="muted">${esc(x.createdAt)}</div></td></tr>`
  );
}
