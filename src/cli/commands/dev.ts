import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import type { AstroConfig } from '../../config/store.js';
import { UserError } from '../../errors.js';
import { checkEnvFile } from '../env-file.js';

interface CheckFlags {
  imageName?: string;
  python?: string;
  env: string;
  cache: boolean;
  args?: string;
}

/** `--args "-k smoke -x"` → ['-k', 'smoke', '-x'], honouring simple quotes. */
export function splitArgs(text: string | undefined): string[] {
  if (!text) return [];
  const out: string[] = [];
  for (const m of text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

async function dockerFor(ctx: CommandContext, imageName: string | undefined, containerBinary: string | undefined) {
  if (!imageName) return undefined;
  const { connectEngine } = await import('../../image/connect.js');
  return connectEngine(ctx.env, { containerBinary, signal: ctx.signal, debug: (m) => ctx.out.debug(m) });
}

/**
 * The config, when the check may read it: the engine's binary (`container.binary`) for --image-name, `parse.python`
 * when neither --python nor ASTRO_PARSE_PYTHON names the interpreter. Otherwise it is not read at all (its YAML took
 * 6 ms of a warm parse), nor can a config file the command does not use stop it.
 */
async function checkConfig(c: CommandContext, flags: CheckFlags): Promise<AstroConfig | undefined> {
  const needed = flags.imageName !== undefined || (flags.python === undefined && c.env.parsePython === undefined);
  return needed ? c.loadConfig() : undefined;
}

/** Where dev parse and dev pytest run: the project, in an image or with a host Python, with the project's env file. */
function checkTarget(c: CommandContext, flags: CheckFlags, config: AstroConfig | undefined) {
  return {
    projectDir: c.cwd,
    image: flags.imageName,
    python: flags.python,
    configuredPython: c.env.parsePython ?? (config?.get('parse.python') || undefined),
    envFile: flags.env,
    hostEnv: c.env.raw,
    cacheDir: c.env.cacheDir,
  };
}

export function registerDev(program: Command, ctx: () => CommandContext): void {
  const dev = program.command('dev').description('Check your Astro project locally');

  dev
    .command('parse')
    .description("Check the DAGs for import errors, with the verdicts of Airflow's DagBag and the default DAG integrity test")
    .option('-i, --image-name <image>', 'parse inside this image instead of on the host')
    .option('--python <path>', 'Python interpreter with Airflow installed (host mode)')
    .option('-e, --env <file>', 'env file the DAGs see', '.env')
    .option('--no-cache', 'parse every file again, ignoring cached results')
    .addHelpText(
      'after',
      '\nExamples:\n  astro dev parse\n  astro dev parse --python .venv/bin/python --json\n  astro dev parse --image-name my-project:latest',
    )
    .action(async (flags: CheckFlags) => {
      const c = ctx();
      const { out, cwd, signal } = c;
      await (await import('../../parse/project.js')).assertAstroProject(cwd);
      await checkEnvFile(cwd, flags.env);
      const [{ runParse }, { renderParseReport }, { wantsStandby }, config] = await Promise.all([
        import('../../parse/runParse.js'),
        import('../../parse/render.js'),
        import('../../parse/standby-setting.js'),
        checkConfig(c, flags),
      ]);
      const spinner = await out.spinner('Checking your DAGs for errors…');
      let report;
      try {
        report = await runParse(
          {
            ...checkTarget(c, flags, config),
            noCache: !flags.cache,
            // A person iterating at a terminal gets the next run's harness started ahead.
            keepWarm: wantsStandby({ setting: c.env.parseStandby, ci: c.env.ci, interactive: out.interactive }),
            signal,
            onProgress: (e) => {
              if (e.type === 'listing') spinner.update(`Checking ${e.toParse} of ${e.files} DAG files for errors…`);
            },
          },
          { docker: await dockerFor(c, flags.imageName, config?.get('container.binary')) },
        );
      } catch (error) {
        spinner.fail('Checking your DAGs for errors failed');
        throw error;
      }
      spinner.stop();
      out.setDocument(report);
      for (const line of renderParseReport(report, { verbose: out.verbose }).split('\n')) {
        if (line) out.result(line);
      }
      if (!report.summary.passed) {
        throw new UserError('See above for errors detected in your DAGs', {
          nextStep: 'Fix the files listed above, or list a file in .astro/dag_integrity_exceptions.txt to exempt it.',
        });
      }
    });

  dev
    .command('pytest')
    .description("Run the project's pytests (tests/ by default); only pytest's exit code 0 counts as passed")
    .argument('[path]', 'test file or folder (default: tests/)')
    .option('-i, --image-name <image>', 'run inside this image instead of on the host')
    .option('--python <path>', 'Python interpreter with Airflow and pytest installed (host mode)')
    .option('-a, --args <args>', 'extra arguments for pytest, e.g. "-k smoke -x"')
    .option('-e, --env <file>', 'env file the tests see', '.env')
    .action(async (testPath: string | undefined, flags: CheckFlags) => {
      const c = ctx();
      const { out, cwd, signal } = c;
      await (await import('../../parse/project.js')).assertAstroProject(cwd);
      await checkEnvFile(cwd, flags.env);
      const [{ runPytest }, config] = await Promise.all([import('../../parse/pytest.js'), checkConfig(c, flags)]);
      const result = await runPytest(
        {
          ...checkTarget(c, flags, config),
          path: testPath,
          args: splitArgs(flags.args),
          signal,
          // pytest's report is the result of this command: stdout, unless --json asked for one document.
          // Test output carries what DAG code printed: no control sequence of it reaches the terminal as such.
          onOutput: (chunk, stream) => (stream === 'stdout' && !out.json ? out.streams.stdout : out.streams.stderr).write(out.redact(chunk)),
        },
        { docker: await dockerFor(c, flags.imageName, config?.get('container.binary')) },
      );
      out.setDocument({ passed: result.passed, exitCode: result.exitCode, mode: result.mode });
      if (!result.passed) {
        throw new UserError(
          result.exitCode === 1 ? 'at least 1 pytest in your tests directory failed' : `pytest did not complete (exit code ${result.exitCode})`,
          { nextStep: 'Fix the failing tests listed above and run astro dev pytest again.' },
        );
      }
      out.info('\nAll Pytests passed!');
    });
}
