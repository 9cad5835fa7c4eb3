/**
 * Builds the command tree and runs it. main() never exits the process: it returns the exit code, and only
 * bin/astro.js hands it to the process, so the whole CLI runs in-process in tests.
 */
import { Command, CommanderError, Option } from 'commander';
import { exitCodeHelp, ExitCode, InterruptedError, toAstroError, UsageError, type AstroError } from '../errors.js';
import { interruptedBy } from '../util/retry.js';
import { readEnv, type AstroEnv } from '../env.js';
import { Output, type Streams } from '../ui/output.js';
import { normalizeBooleanFlags } from './bool-flags.js';
import { createCommandContext, type CommandContext } from './context.js';
import { registerConfig } from './commands/config.js';
import { registerContext } from './commands/context.js';
import { registerDeploy } from './commands/deploy.js';
import { registerDeployment } from './commands/deployment.js';
import { registerDev } from './commands/dev.js';
import { registerLogin } from './commands/login.js';
import { registerVersion } from './commands/version.js';

export interface MainOptions {
  streams?: Streams;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Aborted by bin/ on SIGINT/SIGTERM; the reason is the signal name. */
  signal?: AbortSignal;
}

const EXAMPLES = [
  'Examples:',
  '  astro login                     log in to Astro in your browser',
  '  astro deploy                    deploy the project in this folder',
  '  astro deploy --dags             upload only the dags/ folder',
  '  astro dev parse                 check the DAGs for import errors',
  '  ASTRO_API_TOKEN=... astro deploy <deployment-id>   deploy from CI',
].join('\n');

/** logrus levels, which Astronomer's CLI accepts for --verbosity (case-insensitive). */
const VERBOSITY_LEVELS = ['panic', 'fatal', 'error', 'warn', 'warning', 'info', 'debug', 'trace'];

function parseVerbosity(value: string): string {
  const level = value.trim().toLowerCase();
  if (!VERBOSITY_LEVELS.includes(level)) {
    throw new UsageError(`--verbosity: "${value}" is not a log level (one of ${VERBOSITY_LEVELS.join(', ')}).`);
  }
  return level;
}

export function buildProgram(ctx: () => CommandContext): Command {
  const program = new Command('astro')
    .description('Deploy Apache Airflow projects to Astronomer (Astro and Astronomer Software)')
    .addOption(new Option('--json', 'print one JSON document on stdout (results and errors)'))
    .addOption(new Option('--verbose', 'print debug output on stderr'))
    .addOption(
      new Option('--verbosity <level>', 'log level; debug or trace is --verbose')
        .choices(VERBOSITY_LEVELS)
        .argParser(parseVerbosity),
    )
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .addHelpText('after', `\n${EXAMPLES}`)
    .addHelpText('afterAll', `\n${exitCodeHelp}`);
  registerLogin(program, ctx);
  registerDeploy(program, ctx);
  registerDeployment(program, ctx);
  registerDev(program, ctx);
  registerContext(program, ctx);
  registerConfig(program, ctx);
  registerVersion(program, ctx);
  return program;
}

function applyToAll(command: Command, apply: (c: Command) => void): void {
  apply(command);
  for (const sub of command.commands) applyToAll(sub, apply);
}

export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const streams: Streams = options.streams ?? { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
  const env: AstroEnv = readEnv(options.env ?? process.env);
  const cwd = options.cwd ?? process.cwd();
  const signal = options.signal ?? new AbortController().signal;

  // Output depends on --json/--verbose, known only after parsing; until then errors print in text mode.
  let out = new Output(streams, { noColor: env.noColor, forceColor: env.forceColor, ci: env.ci });
  let context: CommandContext | undefined;

  const program = buildProgram(() => {
    if (!context) throw new Error('command context used before the command started');
    return context;
  });
  applyToAll(program, (c) => {
    c.exitOverride();
    c.configureOutput({
      writeOut: (s) => streams.stdout.write(s),
      writeErr: (s) => streams.stderr.write(s),
      // Usage errors are printed by us, once, with the exit-code contract.
      outputError: () => {},
    });
    c.hook('preAction', (_self, action) => {
      const globals = action.optsWithGlobals() as { json?: boolean; verbose?: boolean; verbosity?: string };
      const verbose = globals.verbose === true || globals.verbosity === 'debug' || globals.verbosity === 'trace';
      out = new Output(streams, { json: globals.json, verbose, noColor: env.noColor, forceColor: env.forceColor, ci: env.ci });
      if (env.apiToken) out.addSecret(env.apiToken);
      if (env.apiKeySecret) out.addSecret(env.apiKeySecret);
      context = createCommandContext(out, env, cwd, signal);
    });
  });

  try {
    await program.parseAsync(normalizeBooleanFlags(program, argv), { from: 'user' });
    if (signal.aborted) throw interruption(signal);
    out.flushDocument();
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
        return ExitCode.ok;
      }
      const usage = new UsageError(error.message.replace(/^error: /, ''), {
        nextStep: 'Run astro --help (or astro <command> --help) to see the accepted arguments.',
      });
      out.printError(usage);
      return usage.exitCode;
    }
    const astroError: AstroError = signal.aborted && !(error instanceof InterruptedError) ? interruption(signal, error) : toAstroError(error);
    out.printError(astroError);
    return astroError.exitCode;
  }
}

function interruption(signal: AbortSignal, cause?: unknown): InterruptedError {
  return interruptedBy(signal, undefined, cause);
}
