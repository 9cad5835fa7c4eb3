import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { NotImplementedError } from '../../errors.js';

export function registerLogin(program: Command, ctx: () => CommandContext): void {
  program
    .command('login')
    .description('Log in to Astro (browser) or Astronomer Software')
    .argument('[domain]', 'platform domain, e.g. astronomer.io (default), localhost, or a Software base domain')
    .option('-l, --login-link', 'print the login URL instead of opening a browser')
    .option('-t, --token-login <token>', 'log in with an existing token')
    .option('-o, --oauth', 'Software: skip username/password and use an OAuth token')
    .action(async () => {
      ctx();
      throw new NotImplementedError('login');
    });

  program
    .command('logout')
    .description('Log out of a platform (removes its stored token)')
    .argument('[domain]', 'platform domain (default: the current context)')
    .action(async () => {
      ctx();
      throw new NotImplementedError('logout');
    });
}
