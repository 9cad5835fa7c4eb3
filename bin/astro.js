#!/usr/bin/env node
// The only place that exits the process: run main(), turn signals into cancellation, and set the exit code.
// CommonJS (bin/package.json says so): Node starts an ES-module entry point 3-5 ms slower, on every command.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const helpText = require('./help-text.js');

const argv = process.argv.slice(2);
const bundleFile = path.join(__dirname, '..', 'dist', 'bundle', 'main.cjs');
const bundleStat = fs.statSync(bundleFile);
/** Beside the bundle: what this machine made from it (V8 code caches, help texts). A build clears it. */
const madeDir = path.join(path.dirname(bundleFile), 'code-cache');

// `astro --help` and the like: the text recorded by an earlier run of this build, printed without loading the CLI.
// To a file, a pipe or the null device it is one write, without the streams Node sets up for stdout and stderr.
const plainStdout = helpText.isRequest(argv) && helpText.plainOutput(1);
const helpKey = helpText.helpKey(argv, process.env, plainStdout ? { isTTY: false } : process.stdout, bundleStat);
const recordedHelp = helpKey === undefined ? undefined : helpText.read(madeDir, helpKey);
if (recordedHelp !== undefined && plainStdout) {
  helpText.print(1, recordedHelp, printHelp);
} else if (recordedHelp !== undefined) {
  printHelp(recordedHelp);
} else {
  // An API command's connection opens first, so that its handshakes overlap loading the CLI (early-connection.js);
  // the CLI loads once its first packet can leave.
  const early = require('./early-connection.js').open(argv, process.env, { entryPoint: true });
  if (early === undefined) runCli(undefined);
  else early.started.then(() => runCli({ origin: early.origin, socket: early.socket }));
}

function printHelp(text) {
  stopOnClosedPipe(() => undefined);
  process.stdout.write(text);
}

/** `astro ... | head`: a closed pipe is the reader's choice, not an error. */
function stopOnClosedPipe(exit) {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error) => {
      if (error.code === 'EPIPE') exit(process.exitCode ?? 0);
      throw error;
    });
  }
}

/**
 * Compiles dist/bundle/main.cjs with a V8 code cache: module compilation was the largest part of start-up after
 * Node's own, and Node 20 caches no compiled code. The cache is per command (each compiles different functions),
 * in dist/bundle/code-cache/ beside the code it was made from (a build clears it), keyed by Node's version and the
 * bundle's size and time; V8 rejects one that does not fit. Missing or rejected, it is written when the command
 * ends; a folder we cannot write to means no cache, nothing else.
 */
function loadCli() {
  const file = bundleFile;
  // ASCII only (scripts/bundle.mjs checks): Latin-1 is the cheapest way to a V8 string.
  const source = fs.readFileSync(file, 'latin1');
  const { size, mtimeMs } = bundleStat;
  const command = argv.find((arg) => !arg.startsWith('-')) ?? 'help';
  // A DAG-only deploy runs a fraction of an image deploy's code, and a cache holding the image path's functions too
  // took it 3-5 ms longer to read: it has its own.
  const variant = command === 'deploy' && argv.includes('--dags') ? 'deploy-dags' : /^[a-z]{1,24}$/.test(command) ? command : 'other';
  const key = `${variant}-${process.version}-${process.arch}-${size}-${Math.trunc(mtimeMs)}`;
  const cacheFile = path.join(madeDir, `${key}.v8`);
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // none yet
  }
  const script = new (require('node:vm').Script)(`(function (exports, require, module, __filename, __dirname, __import) {${source}\n})`, {
    filename: file,
    cachedData,
  });
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        fs.mkdirSync(path.dirname(cacheFile), { recursive: true });
        const temp = `${cacheFile}.${process.pid}.tmp`;
        fs.writeFileSync(temp, script.createCachedData());
        fs.renameSync(temp, cacheFile);
      } catch {
        // read-only install, full disk: start-up stays as it was
      }
    });
  }
  const cli = { exports: {} };
  script.runInThisContext()(cli.exports, require('node:module').createRequire(file), cli, file, path.dirname(file), (specifier) => import(specifier));
  return cli.exports;
}

/** Everything but a recorded help: the CLI itself. `earlyConnection`: what early-connection.js opened, if anything. */
function runCli(earlyConnection) {
  // V8's compile cache for external modules loaded later (Node 22.1+; older Node has no such call).
  // (node:module and node:vm load here: a recorded help needs neither.)
  require('node:module').enableCompileCache?.();
  const { main, reportCrash } = loadCli();

  /** Set once the command has an outcome, or is being ended on purpose (a closed pipe, a second signal, a crash). */
  let ended = false;
  const exit = (code) => {
    ended = true;
    process.exit(code);
  };

  stopOnClosedPipe(exit);

  const controller = new AbortController();
  let signals = 0;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      signals += 1;
      if (signals > 1) exit(signal === 'SIGINT' ? 130 : 143);
      controller.abort(signal);
    });
  }

  // Whatever escaped every handler ends the command as a reported bug, once, never as a raw stack trace.
  let crashed = false;
  const crash = (error) => {
    if (crashed) return;
    crashed = true;
    exit(reportCrash(error, argv));
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);

  // Node ended an ES-module entry point whose work stopped unfinished (a promise nothing would ever settle) with exit
  // code 13; a CommonJS one would end it as a success. It is the bug it is, reported as any other.
  process.on('exit', () => {
    if (ended) return;
    ended = true;
    process.exitCode = reportCrash(new Error('the command stopped before it finished: nothing was left to wait for'), argv);
  });

  // A help request with no recorded text yet: record it for the next run.
  const recording = helpKey === undefined ? undefined : helpText.recorder(madeDir, helpKey, process.stdout, process.stderr);

  main(argv, { signal: controller.signal, earlyConnection }).then((code) => {
    ended = true;
    recording?.finish(code);
    process.exitCode = code;
  }, crash);
}
