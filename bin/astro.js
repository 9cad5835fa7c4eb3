#!/usr/bin/env node
// The only place that exits the process: run main(), turn signals into cancellation, and set the exit code.
import { main, reportCrash } from '../dist/bundle/main.js';

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
