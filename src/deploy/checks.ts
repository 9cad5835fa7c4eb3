/**
 * The local gates every deploy shares, Astro or Software: the DAG parse, the project's tests, and the
 * confirmation an empty dags folder needs (it would delete the Deployment's DAGs).
 */
import { NeedsInputError, UserError } from '../errors.js';
import { escapeLine } from '../ui/escape.js';
import type { DeployPorts } from './deploy.js';

export interface ProjectChecks {
  projectDir: string;
  dagsDir: string;
  envFile?: string;
  /** Check inside this image (the one just built); else on the host. */
  image?: string;
  parse: boolean;
  pytest?: { file?: string };
  force: boolean;
  signal: AbortSignal;
}

export interface CheckPorts {
  parse: DeployPorts['parse'];
  pytest: DeployPorts['pytest'];
  notice: (message: string) => void;
  warn: (message: string) => void;
  /** Runs a step as a timed phase of the deploy. */
  phase: <T>(name: 'parse' | 'pytest', work: () => Promise<T>) => Promise<T>;
}

export async function runProjectChecks(checks: ProjectChecks, ports: CheckPorts): Promise<void> {
  const { projectDir, dagsDir, envFile, image, signal } = checks;
  if (checks.parse) {
    const outcome = await ports.phase('parse', () => ports.parse({ projectDir, dagsDir, envFile, image, signal }));
    // A file name may hold a newline or escapes: one line each, so it cannot forge a line of astro's output.
    for (const f of outcome.failures) ports.warn(`${escapeLine(f.path)}: ${f.message}`);
    if (!outcome.ok && !checks.force) {
      throw new UserError('your local DAGs did not parse. Fix the listed errors or use `astro deploy [deployment-id] -f` to force deploy');
    }
    ports.notice(outcome.ok ? '✔ No errors detected in your DAGs' : 'Deploying despite DAG errors because of --force.');
  }
  if (checks.pytest) {
    const testPath = checks.pytest.file;
    const result = await ports.phase('pytest', () => ports.pytest({ projectDir, testPath, envFile, image, signal }));
    if (!result.passed) {
      throw new UserError(
        result.exitCode === 1
          ? "at least 1 pytest in your tests directory failed. Fix the issues listed or rerun the command without the '--pytest' flag to deploy"
          : `Something went wrong while Pytesting your DAGs,\nif the issue persists rerun the command without the '--pytest' flag to deploy: pytest exited with ${result.exitCode}`,
      );
    }
    ports.notice('\nAll Pytests passed!');
  }
}

/** Asks before a deploy with no DAG files; without a terminal, --force is the answer. */
export async function confirmEmptyDags(
  options: { force: boolean; showWarnings: boolean; cancelMessage: string },
  confirm: DeployPorts['confirm'],
): Promise<void> {
  if (options.force || !options.showWarnings) return;
  let yes: boolean;
  try {
    yes = await confirm('Warning: No DAGs found. This will delete any existing DAGs. Are you sure you want to deploy?', ['--force']);
  } catch (error) {
    if (error instanceof NeedsInputError) {
      throw new NeedsInputError("No DAGs found: this deploy would delete the Deployment's existing DAGs.", ['--force'], {
        nextStep: 'Add DAG files to the dags folder, or pass --force to deploy an empty DAG bundle on purpose.',
      });
    }
    throw error;
  }
  if (!yes) throw new UserError(options.cancelMessage);
}
