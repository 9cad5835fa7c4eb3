#!/usr/bin/env node
// The only place that exits the process: run main(), turn signals into cancellation, and set the exit code.
import module from 'node:module';

// V8's code cache for our modules (Node 22.1+; older Node has no such call and compiles on every start): module
// compilation is the largest part of start-up after Node's own. Enabled before the CLI's modules load.
module.enableCompileCache?.();
const { main, reportCrash } = await import('../dist/bundle/main.js');

// `astro ... | head`: a closed pipe is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

const controller = new AbortController();
let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    signals += 1;
    if (signals > 1) process.exit(signal === 'SIGINT' ? 130 : 143);
    controller.abort(signal);
  });
}

// Whatever escaped every handler ends the command as a reported bug, once, never as a raw stack trace.
let crashed = false;
const crash = (error) => {
  if (crashed) return;
  crashed = true;
  process.exit(reportCrash(error, process.argv.slice(2)));
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

process.exitCode = await main(process.argv.slice(2), { signal: controller.signal });
