// The least a Node program does for a DAG-only deploy, for bench/peer.bench.ts to time beside both CLIs: what Node
// itself costs on that path. The same four requests as astro (the Deployment, create, the upload, finalize) over
// node:http with keep-alive, the DAG files read and gzipped while the Deployment is looked up, and connections to the
// API and (when given) the blob store opened as the process starts, as astro opens them. Nothing else: no config, no
// validation, no tar headers, no retries, no output. Not a deploy tool: a measuring stick.
// usage: ASTRO_API_TOKEN=... node node-floor.cjs <api base URL> <organization id> <deployment id> <dags dir> [blob origin]
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const zlib = require('node:zlib');

const [apiBase, organization, deployment, dagsDir, blobOrigin] = process.argv.slice(2);
const token = process.env.ASTRO_API_TOKEN;
if (!apiBase || !organization || !deployment || !dagsDir || !token) {
  process.stderr.write('usage: ASTRO_API_TOKEN=... node node-floor.cjs <api base URL> <organization id> <deployment id> <dags dir> [blob origin]\n');
  process.exit(2);
}

/** One connection per origin opened now, handed to the agent's first request there. */
const early = new Map();
for (const origin of [apiBase, blobOrigin].filter(Boolean)) {
  const url = new URL(origin);
  early.set(`${url.hostname}:${url.port}`, net.connect(Number(url.port), url.hostname));
}
const agent = new http.Agent({ keepAlive: true });
const open = agent.createConnection.bind(agent);
agent.createConnection = (options, callback) => {
  const key = `${options.host}:${options.port}`;
  const socket = early.get(key);
  early.delete(key);
  return socket ?? open(options, callback);
};

function send(url, method, body, headers) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, agent, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (response.statusCode >= 300) reject(new Error(`${method} ${url}: ${response.statusCode} ${text.slice(0, 300)}`));
        else resolve({ headers: response.headers, text });
      });
    });
    request.on('error', reject);
    request.end(body);
  });
}

const json = (value) => Buffer.from(JSON.stringify(value));
const api = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

async function main() {
  const base = `${apiBase}/v1/organizations/${organization}/deployments/${deployment}`;
  const looked = send(base, 'GET', undefined, api);
  const files = [];
  for (const entry of fs.readdirSync(dagsDir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.push(fs.readFileSync(path.join(entry.parentPath ?? entry.path, entry.name)));
  }
  const bundle = zlib.gzipSync(Buffer.concat(files));
  JSON.parse((await looked).text);
  const deploy = JSON.parse((await send(`${base}/deploys`, 'POST', json({ type: 'DAG_ONLY' }), api)).text);
  const upload = await send(deploy.dagsUploadUrl, 'PUT', bundle, { 'x-ms-blob-type': 'BlockBlob', 'x-ms-version': '2023-11-03' });
  await send(`${base}/deploys/${deploy.id}/finalize`, 'POST', json({ dagTarballVersion: upload.headers['x-ms-version-id'] }), api);
  agent.destroy();
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
});
