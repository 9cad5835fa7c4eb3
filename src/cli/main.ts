/**
 * Builds the command tree and runs it. main() never exits the process: it returns the exit code, and only
 * bin/astro.js hands it to the process, so the whole CLI runs in-process in tests.
 */
import { Command, CommanderError, Option } from 'commander';
import { exitCodeHelp, ExitCode, InterruptedError, toAstroError, UsageError, UserError, type AstroError } from '../errors.js';
import { interruptedBy } from '../util/retry.js';
import { readEnv, type AstroEnv } from '../env.js';
import { Output, type Streams } from '../ui/output.js';
import { normalizeBooleanFlags } from './bool-flags.js';
import { earlyApiConnection, type EarlyConnection } from './api-origin.js';
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
  /** The API connection bin/ opened before loading the CLI (bin/early-connection.js), for the first API request. */
  earlyConnection?: EarlyConnection;
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
    .addOption(new Option('--verbosity <level>', 'log level; debug or trace is --verbose').choices(VERBOSITY_LEVELS).argParser(parseVerbosity))
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
  const streams: Streams = options.streams ?? processStreams();
  const env: AstroEnv = readEnv(options.env);
  // The connection a deploy's first request will take, if bin/ opened one (api-origin.ts).
  const apiOrigin = earlyApiConnection(env, options.earlyConnection);
  // Read when a command starts, not here: `--help` works in a deleted directory, and a command there fails cleanly.
  const cwd = options.cwd;
  const signal = options.signal ?? new AbortController().signal;

  // Output depends on --json/--verbose, known only after parsing. Parse errors happen before that, so --json is
  // also looked for on the raw line: with it, even commander's own errors and help are one JSON document.
  const jsonRequested = wantsJson(argv);
  let out = new Output(streams, { json: jsonRequested, noColor: env.noColor, forceColor: env.forceColor, ci: env.ci });
  let help = '';
  let context: CommandContext | undefined;

  const program = buildProgram(() => {
    if (!context) throw new Error('command context used before the command started');
    return context;
  });
  applyToAll(program, (c) => {
    c.exitOverride();
    c.configureOutput({
      writeOut: (s) => {
        if (jsonRequested) help += s;
        else streams.stdout.write(s);
      },
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
      context = createCommandContext(out, env, cwd ?? workingDirectory(), signal, apiOrigin);
    });
  });

  try {
    await program.parseAsync(normalizeBooleanFlags(program, argv), { from: 'user' });
    if (signal.aborted) throw interruption(signal);
    out.flushDocument();
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
        if (jsonRequested) {
          out.setDocument({ help });
          out.flushDocument();
        }
        return ExitCode.ok;
      }
      // No command given (`astro`, `astro dev`): commander printed the help on stderr. A person reads that; a
      // program that asked for JSON gets an error it can parse.
      if (error.code === 'commander.help') {
        if (!jsonRequested) return ExitCode.ok;
        const usage = new UsageError('No command given.', { nextStep: 'Run astro --help (or astro <command> --help) to see the commands.' });
        out.printError(usage);
        return usage.exitCode;
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

/** The process's own streams; stdin only when something reads it (Node makes a stream object for it on first use). */
function processStreams(): Streams {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    get stdin() {
      return process.stdin;
    },
  };
}

/** The process's working directory; a clear refusal when it was deleted or moved away under the shell. */
function workingDirectory(): string {
  try {
    return process.cwd();
  } catch (error) {
    throw new UserError('The current directory no longer exists (it was deleted or moved).', {
      nextStep: 'cd to an existing directory, e.g. your Astro project, and run the command again.',
      cause: error,
    });
  }
}

/** `--json` anywhere before a `--` that ends the options. */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

function interruption(signal: AbortSignal, cause?: unknown): InterruptedError {
  return interruptedBy(signal, undefined, cause);
}

/**
 * For bin/: an error that escaped every handler (an 'error' event nobody listened to, a stray rejection) is still
 * reported as astro reports a bug, on stderr and as the --json document, instead of a raw Node stack trace.
 */
export function reportCrash(error: unknown, argv: string[], streams: Streams = { stdout: process.stdout, stderr: process.stderr }): number {
  const out = new Output(streams, { json: wantsJson(argv) });
  const bug = toAstroError(error);
  out.printError(bug);
  return bug.exitCode;
}
