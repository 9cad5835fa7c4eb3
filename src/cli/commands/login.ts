import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { UsageError, UserError } from '../../errors.js';
import type { AstroConfig } from '../../config/store.js';
import { select, waitForEnter } from '../../ui/prompt.js';
import { askHidden, askLine, readPassword } from '../../ui/text-prompt.js';
import { formatDomain, platformOf } from '../../platform/domain.js';
import type { LoginResult } from '../../auth/login.js';
import { LoginProgress } from './login-progress.js';
import { cliVersion } from '../../version.js';

interface LoginFlags {
  loginLink?: boolean;
  tokenLogin?: string;
  oauth?: boolean;
  username?: string;
  passwordStdin?: boolean;
  organizationId?: string;
  workspaceId?: string;
}

/** `login` and `logout` at the top level, and again under `auth` with `auth token`, as Astronomer's CLI has them. */
export function registerLogin(program: Command, ctx: () => CommandContext): void {
  addLogin(program, ctx);
  addLogout(program, ctx);
  const auth = program.command('auth').description('Log in and out, and print the token of a context');
  addLogin(auth, ctx);
  addLogout(auth, ctx);
  addToken(auth, ctx);
}

function addLogin(parent: Command, ctx: () => CommandContext): void {
  parent
    .command('login')
    .description('Log in to Astro (browser) or Astronomer Software')
    .argument('[domain]', 'platform domain, e.g. astronomer.io (default), localhost, or a Software base domain')
    .option('-l, --login-link', 'print the login URL instead of opening a browser')
    .option('-t, --token-login <token>', 'log in with an existing token (Astro: valid 1 hour, not refreshed; Software: a Houston token)')
    .option('-o, --oauth', 'Software: skip username/password and use an OAuth token')
    .option('-u, --username <name>', 'Software: log in with this username (the password is asked, or read with --password-stdin)')
    .option('--password-stdin', 'Software: read the password from standard input')
    .option('--organization-id <id>', 'Astro: the organization to use (else the saved one, the only one, or a prompt)')
    .option('--workspace-id <id>', 'the workspace to use (else the only one, the last used one, or a prompt)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  astro login                          log in to Astro in your browser',
        '  astro login --login-link             print the URL to open on another device',
        '  astro login software.example.com -u me@example.com --password-stdin < password.txt',
        '',
        'In CI, do not log in: set ASTRO_API_TOKEN (and ASTRO_DOMAIN for a non-default domain) instead.',
      ].join('\n'),
    )
    .action(async (domainArg: string | undefined, flags: LoginFlags) => {
      const c = ctx();
      if (flags.tokenLogin !== undefined) c.out.addSecret(flags.tokenLogin);
      if (flags.passwordStdin && flags.username === undefined) {
        throw new UsageError('--password-stdin needs --username.');
      }
      const config = await c.loadConfig();
      const domain = formatDomain(domainArg ?? config.currentDomain(c.env.domain));
      const result =
        platformOf(domain, { localPlatform: config.get('local.platform') }) === 'astro'
          ? await astroLogin(c, config, domain, flags)
          : await softwareLogin(c, config, domain, flags);
      c.out.result('Successfully authenticated to Astronomer');
      c.out.setDocument({ loggedIn: true, ...result });
    });
}

function addLogout(parent: Command, ctx: () => CommandContext): void {
  parent
    .command('logout')
    .description('Log out of a platform (removes its stored token)')
    .argument('[domain]', 'platform domain (default: the current context)')
    .action(async (domain: string | undefined) => {
      const { out, env, loadConfig } = ctx();
      const { logout } = await import('../../auth/login.js');
      const config = await loadConfig();
      const result = await logout(config, domain, env.domain);
      out.result('Successfully logged out of Astronomer');
      out.setDocument({ loggedOut: true, domain: result.domain });
    });
}

function addToken(parent: Command, ctx: () => CommandContext): void {
  parent
    .command('token')
    .description('Print the access token of the current context (or of --domain), without "Bearer ", for scripts')
    .option('-d, --domain <domain>', 'the context to print the token of, instead of the current one')
    .action(async (flags: { domain?: string }) => {
      const { out, env, signal, loadConfig } = ctx();
      const { contextToken } = await import('../../auth/session.js');
      const config = await loadConfig();
      const domain = flags.domain !== undefined ? formatDomain(flags.domain) : config.currentDomain(env.domain);
      if (!domain) throw new UserError('no context set, have you authenticated to Astro or APC? Run astro login and try again');
      const context = config.context(domain) ?? (flags.domain !== undefined ? config.context(flags.domain.trim()) : undefined);
      if (!context) throw new UserError(`There is no context for "${domain}".`, { nextStep: `Run astro login ${domain}.` });
      // Printing the token is this command's purpose: it is not registered for redaction.
      const token = await contextToken(config, context, { signal });
      out.result(token);
      out.setDocument({ domain: context.domain, token });
    });
}

/** The `login.callback_port` setting; undefined means Astro's own (12345). */
function callbackPort(config: AstroConfig): number | undefined {
  const raw = config.get('login.callback_port');
  if (raw === undefined || raw.trim() === '') return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`The setting login.callback_port must be a port number (0-65535), not "${raw}".`);
  }
  return port;
}

async function astroLogin(c: CommandContext, config: AstroConfig, domain: string, flags: LoginFlags): Promise<LoginResult> {
  const { out, env, signal } = c;
  const [{ loginToAstro }, { createAstroClient }] = await Promise.all([import('../../auth/login.js'), import('../../platform/astro/client.js')]);
  if (flags.username !== undefined || flags.passwordStdin || flags.oauth) {
    out.warn(`--username, --password-stdin and --oauth apply to Astronomer Software only; ${domain} is Astro, so they are ignored.`);
  }
  const progress = new LoginProgress(out);
  try {
    return await loginToAstro(
      {
        domain,
        config,
        loginLink: flags.loginLink,
        token: flags.tokenLogin,
        organizationId: flags.organizationId,
        workspaceId: flags.workspaceId,
        callbackPort: callbackPort(config),
      },
      {
        controlPlane: (baseUrl, token) =>
          createAstroClient({
            baseUrl,
            token: () => token,
            clientIdentifier: env.clientIdentifier,
            clientVersion: env.deployActionVersion ?? cliVersion(),
          }),
        openBrowser,
        beforeBrowserOpens: () => waitForEnter(out, 'Press Enter to open the browser to log in or ^C to quit…', signal),
        chooseOrganization: (organizations) =>
          select(
            out,
            'Please choose an organization:',
            organizations.map((o) => ({ label: `${o.name} (${o.id})`, value: o })),
            ['--organization-id'],
            signal,
          ),
        chooseWorkspace: (workspaces) =>
          select(
            out,
            'Please choose a workspace:',
            workspaces.map((w) => ({ label: `${w.name} (${w.id})`, value: w })),
            ['--workspace-id'],
            signal,
          ),
        addSecret: (secret) => out.addSecret(secret),
        onProgress: (event) => progress.astro(event),
        signal,
      },
    );
  } finally {
    await progress.end();
  }
}

async function softwareLogin(c: CommandContext, config: AstroConfig, domain: string, flags: LoginFlags): Promise<LoginResult> {
  const { out, signal } = c;
  const { loginToSoftware } = await import('../../auth/software-login.js');
  if (flags.loginLink || flags.organizationId !== undefined) {
    out.warn(`--login-link and --organization-id apply to Astro only; ${domain} is Astronomer Software, so they are ignored.`);
  }
  const password = flags.passwordStdin ? await readPassword(out, '--password-stdin') : undefined;
  const progress = new LoginProgress(out);
  return loginToSoftware(
    {
      domain,
      config,
      token: flags.tokenLogin,
      username: flags.username,
      password,
      oauth: flags.oauth,
      workspaceId: flags.workspaceId,
    },
    {
      askUsername: () => askLine(out, 'Username (leave blank for oAuth): ', ['--username', '--oauth', '--token-login'], signal),
      askPassword: () => askHidden(out, 'Password: ', ['--password-stdin'], signal),
      askOAuthToken: () => askHidden(out, 'oAuth Token: ', ['--token-login'], signal),
      chooseWorkspace: (workspaces) =>
        select(
          out,
          'Please choose a workspace:',
          workspaces.map((w) => ({ label: `${w.label ?? ''} (${w.id})`, value: w })),
          ['--workspace-id'],
          signal,
        ),
      addSecret: (secret) => out.addSecret(secret),
      onProgress: (event) => progress.software(event),
      signal,
    },
  );
}

/**
 * Opens the system browser with the `open` package. A launcher that fails at once (no browser on this machine)
 * counts as a failure, so the URL gets printed instead.
 */
async function openBrowser(url: string): Promise<void> {
  const { default: open } = await import('open');
  const child = await open(url);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, 1500);
    timer.unref();
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0 && code !== null) reject(new Error(`the browser launcher exited with status ${code}`));
      else resolve();
    });
  });
}
