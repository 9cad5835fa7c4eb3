// The platform's API, connected to before the CLI loads. A command whose first requests go to the API (a deploy, a
// Deployment listing) opens a connection to where its API requests went last time under the same config home, as
// the process starts: its handshakes (TCP, and TLS for https) then overlap loading the CLI, its config and the
// session instead of delaying the first request, which far from the platform is a round trip or two of every deploy.
// The CLI takes the connection for its first request there (src/util/preconnect.ts adoptConnection); a wrong guess
// (another context since) costs one connection nobody uses. The CLI remembers the origin
// (src/cli/api-origin.ts: only scheme, host and port) in the same file this reads.
//
// This runs before the CLI (and zod) is loaded: the file is checked by hand, as tightly as the CLI's own schema does
// (an object whose value for this config home is an http(s) origin and nothing more); anything else opens nothing.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** Commands whose first requests go to the platform's API. */
const API_COMMANDS = new Set(['deploy', 'deployment']);
/** What the CLI writes for a config home: scheme, host and port (src/util/remembered-origins.ts). */
const ORIGIN = /^https?:\/\/[^/?#\s]+$/;
/** How long the start waits at most for the connection's name lookup (a local name takes about 1 ms). */
const LOOKUP_WAIT_MS = 3;

function nonEmpty(value) {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Where the CLI keeps the API's origin for this environment, and under which key (src/env.ts: astroHome, cacheDir). */
function locate(env) {
  const home = nonEmpty(env.ASTRO_HOME) ?? nonEmpty(env.HOME) ?? os.homedir();
  const cacheDir = nonEmpty(env.ASTRO_CACHE_DIR) ?? path.join(nonEmpty(env.XDG_CACHE_HOME) ?? path.join(os.homedir(), '.cache'), 'astro');
  return { file: path.join(cacheDir, 'api-origins.json'), key: path.resolve(home) };
}

/** The origin remembered for this environment's config home, or undefined. */
function rememberedOrigin(env) {
  const { file, key } = locate(env);
  let known;
  try {
    known = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (known === null || typeof known !== 'object' || Array.isArray(known) || !Object.hasOwn(known, key)) return undefined;
  const origin = known[key];
  return typeof origin === 'string' && ORIGIN.test(origin) ? origin : undefined;
}

/**
 * For an API command (not its help): the connection opened to the remembered origin, and `started`, which resolves
 * once its first packet can leave (its name looked up: the lookup answers only when the event loop turns, which
 * loading the CLI does not let it do), or after LOOKUP_WAIT_MS. Undefined for anything else. `entryPoint`: called by
 * bin/astro.js as the process starts, before any other code ran (compileAddressPatterns may change a V8 flag then).
 */
function open(argv, env, { entryPoint = false } = {}) {
  const command = argv.find((arg) => !arg.startsWith('-'));
  if (command === undefined || !API_COMMANDS.has(command) || argv.some((arg) => arg === '--help' || arg === '-h')) return undefined;
  const origin = rememberedOrigin(env);
  if (origin === undefined) return undefined;
  let url;
  try {
    url = new URL(origin);
  } catch {
    return undefined;
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const isAddress = /^(\d{1,3}\.){3}\d{1,3}$|:/.test(host);
  if (!isAddress && entryPoint) compileAddressPatterns(host, env);
  // As https.Agent does: the name for SNI and the certificate check, never an IP address.
  const socket =
    url.protocol === 'https:' ? require('node:tls').connect({ host, port, servername: isAddress ? '' : host }) : require('node:net').connect({ host, port });
  // Until the CLI takes it, a failure only means it is not used.
  socket.on('error', () => undefined);
  socket.unref();
  // An address needs no lookup: the first packet leaves at the next tick (and no 'lookup' event comes).
  if (isAddress) return { origin, socket, started: new Promise((resolve) => setImmediate(resolve)) };
  const started = new Promise((resolve) => {
    const events = ['lookup', 'connect', 'error', 'close'];
    const done = () => {
      clearTimeout(timer);
      for (const event of events) socket.off(event, done);
      resolve();
    };
    const timer = setTimeout(done, LOOKUP_WAIT_MS);
    for (const event of events) socket.once(event, done);
  });
  return { origin, socket, started };
}

/**
 * Node checks a host name against its IPv4 and IPv6 address patterns (net.isIP) before every connection to it, in
 * net.connect, dns.lookup and the http agent. V8 runs a pattern from bytecode first and compiles it to machine code
 * on its second use; for Node's IPv6 pattern, a large one, the bytecode alone takes 4-5 ms and the machine code another
 * 1.4 ms, once per process, on the path of every API command. Compiled straight to machine code it takes about 1.2 ms.
 * So the patterns' first use here runs with V8's regexp tier-up off, and the flag is put back at once: nothing else
 * runs meanwhile, and V8 still accepts the CLI's code cache after it. V8's flags belong to the whole process and are
 * not meant to change under running code (in a test runner's process, where thousands of patterns had run, leaving the
 * flag off crashed it), so this is done only as astro's own process starts (bin/astro.js has checked no address
 * before it), never with preloaded code (--require, --import, a loader) or a regexp flag of the user's. Says whether
 * it did.
 */
function compileAddressPatterns(host, env) {
  const net = require('node:net');
  const options = `${process.execArgv.join(' ')} ${env.NODE_OPTIONS ?? ''}`;
  if (/(^|\s)(-r|--require|--import|--loader|--experimental-loader)(\s|=|$)|regexp/.test(options)) return false;
  const v8 = require('node:v8');
  v8.setFlagsFromString('--no-regexp-tier-up');
  try {
    net.isIP(host);
  } finally {
    v8.setFlagsFromString('--regexp-tier-up');
  }
  return true;
}

module.exports = { open, locate, compileAddressPatterns };
