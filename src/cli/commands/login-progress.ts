/** Renders the progress events of the login services as the lines users of Astronomer's CLI know. */
import type { Output, Spinner } from '../../ui/output.js';
import type { ChoiceHow, LoginEvent } from '../../auth/login.js';
import type { SoftwareLoginEvent } from '../../auth/software-login.js';

/** Turns login events into the lines users of Astronomer's CLI know. */
export class LoginProgress {
  private spinner: Promise<Spinner> | undefined;

  constructor(private readonly out: Output) {}

  astro(event: LoginEvent): void {
    const { out } = this;
    switch (event.type) {
      case 'welcome':
        out.info('Welcome to the Astro CLI 🚀');
        out.info('To learn more about Astro, go to https://www.astronomer.io/docs');
        return;
      case 'token-login':
        out.info('You are logging into Astro via an OAuth token\nThis token will expire in 1 hour and will not refresh');
        return;
      case 'login-link':
        out.info(`Please visit the following link on a device with a browser: ${event.url}`);
        return;
      case 'browser-opened':
        out.debug(`Opened the browser at ${event.url}`);
        return;
      case 'browser-open-failed':
        out.info(`Unable to open the URL, please visit the following link: ${event.url}`);
        out.debug(`The browser could not be started: ${event.reason}`);
        return;
      case 'waiting-for-browser':
        this.spinner = out.spinner('Waiting for login to complete in browser');
        return;
      case 'callback-received':
        void this.takeSpinner()?.then((s) => s.succeed('Login received from the browser'));
        return;
      case 'logged-in-as':
        out.info(`Logging in as ${event.email}`);
        return;
      case 'organization-selected':
        if (event.how !== 'saved') out.info(`Using the organization "${event.organization.name}" (${event.organization.id})`);
        return;
      case 'workspace-selected':
        this.workspace(event.workspace.name, event.how);
        return;
      case 'no-workspace':
        out.warn(`The organization "${event.organization.name}" has no Workspace you can use yet. Create one in the Astro UI, then run astro login again.`);
        return;
    }
  }

  software(event: SoftwareLoginEvent): void {
    const { out } = this;
    switch (event.type) {
      case 'oauth-token-needed':
        out.info('Please visit the following URL, authenticate and paste token in next prompt');
        out.info(event.tokenPageUrl);
        return;
      case 'logged-in-as':
        out.info(`Logging in as ${event.username}`);
        return;
      case 'workspace-selected':
        this.workspace(event.workspace.label ?? event.workspace.id, event.how);
        return;
      case 'no-workspace':
        out.warn('You are not a member of any Workspace yet. Ask a Workspace Admin to add you, then run astro login again.');
        return;
    }
  }

  private workspace(name: string, how: ChoiceHow): void {
    if (how === 'only') this.out.info(`"${name}" Workspace found. This is your default Workspace.`);
    else if (how === 'last-used') this.out.info(`Using the Workspace you used last: "${name}"`);
    else this.out.info(`Using the Workspace "${name}"`);
  }

  private takeSpinner(): Promise<Spinner> | undefined {
    const spinner = this.spinner;
    this.spinner = undefined;
    return spinner;
  }

  /** Stops a spinner left running by a failure. */
  async end(): Promise<void> {
    const spinner = this.takeSpinner();
    if (spinner) (await spinner).stop();
  }
}
