// `astro --help`, `astro help <command>`, `astro <command> --help`: the text is the same on every run of one build
// for one terminal width and the same colour settings. The first run records it beside the code cache
// (dist/bundle/code-cache/, which a build clears and the package leaves out); later runs print it without loading
// the CLI at all, which was about half of a `--help` (Node's own start is the rest). Only a help that exited 0 and
// wrote nothing on stderr is recorded. A file that does not match (another build, width or setting, damaged) is
// not used, and a place that cannot be written means no record, nothing else.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** Words a help request is made of: command names and the help flags (no values, no other options). */
const WORD = /^(?:-h|--help|[a-z][a-z0-9-]{0,31})$/;
/** What may change how a help text looks besides the width. */
const ENV_NAMES = ['NO_COLOR', 'FORCE_COLOR', 'CLICOLOR', 'CLICOLOR_FORCE', 'TERM'];

/**
 * Everything the help text depends on, as a string, or undefined when `argv` is not a plain help request.
 * `bundle` is the stat of the CLI's bundle: a new build gives a new key.
 */
function helpKey(argv, env, stdout, bundle) {
  if (!isRequest(argv)) return undefined;
  return JSON.stringify({
    argv,
    columns: stdout.isTTY === true ? stdout.columns : null,
    env: ENV_NAMES.map((name) => env[name] ?? null),
    bundle: [bundle.size, Math.trunc(bundle.mtimeMs)],
    node: process.version,
  });
}

/** Whether `argv` is a plain help request (the only commands with a recorded text). */
function isRequest(argv) {
  if (argv.length === 0 || argv.length > 4 || !argv.every((word) => WORD.test(word))) return false;
  return argv.includes('--help') || argv.includes('-h') || argv[0] === 'help';
}

/**
 * Whether `fd` is plainly not a terminal: a file, a pipe, a socket or the null device. Such an output takes the
 * recorded text with print() and no stream: Node sets up process.stdout and process.stderr on first use, about 2 ms
 * of a 5 ms help (measured: a 2.5 KB text to a pipe, 1.3-2.3 ms more through process.stdout than one fs.writeSync).
 * A character device (a terminal, or not) answers false, and its text goes through process.stdout, which knows the
 * terminal's width; so does a descriptor that cannot be looked at.
 */
function plainOutput(fd) {
  let stat;
  try {
    stat = fs.fstatSync(fd);
    if (!stat.isCharacterDevice()) return true;
    if (process.platform === 'win32') return false;
    const nullDevice = fs.statSync('/dev/null');
    return nullDevice.isCharacterDevice() && nullDevice.rdev === stat.rdev;
  } catch {
    return false;
  }
}

/**
 * Writes `text` to `fd` (a plainOutput) with blocking writes. A reader that closed the pipe ends it quietly, as the
 * CLI does (`astro --help | head`); a full non-blocking pipe hands the rest to `rest`, which waits for it.
 */
function print(fd, text, rest, writeSync = fs.writeSync) {
  const bytes = Buffer.from(text, 'utf8');
  let at = 0;
  try {
    while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
  } catch (error) {
    if (error.code === 'EPIPE') return;
    if (error.code !== 'EAGAIN') throw error;
    rest(bytes.subarray(at));
  }
}

/** FNV-1a, for a file name only: the file holds the whole key, compared before its text is used. */
function fileName(key) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `help-text-${hash.toString(16).padStart(8, '0')}.json`;
}

/** The recorded text for this key, or undefined. */
function read(dir, key) {
  try {
    const record = JSON.parse(fs.readFileSync(path.join(dir, fileName(key)), 'utf8'));
    return record !== null && record.key === key && typeof record.text === 'string' && record.text !== '' ? record.text : undefined;
  } catch {
    return undefined;
  }
}

function write(dir, key, text) {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, fileName(key));
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, JSON.stringify({ key, text }));
    fs.renameSync(temp, file);
  } catch {
    // read-only install, full disk: the next help loads the CLI again
  }
}

/**
 * Records what the command writes while it runs; `finish(exitCode)` keeps the text when the command was a clean help.
 */
function recorder(dir, key, stdout, stderr) {
  const chunks = [];
  let clean = true;
  const stdoutWrite = stdout.write;
  const stderrWrite = stderr.write;
  stdout.write = function (chunk, ...rest) {
    if (typeof chunk === 'string') chunks.push(chunk);
    else clean = false;
    return stdoutWrite.call(this, chunk, ...rest);
  };
  stderr.write = function (...args) {
    clean = false;
    return stderrWrite.apply(this, args);
  };
  return {
    finish(exitCode) {
      stdout.write = stdoutWrite;
      stderr.write = stderrWrite;
      const text = chunks.join('');
      if (clean && exitCode === 0 && text !== '') write(dir, key, text);
    },
  };
}

module.exports = { isRequest, helpKey, plainOutput, print, read, recorder };
