// Faults on the wire between `astro deploy` and the platform API, the registry and the blob store, injected by the
// fault proxy in front of each. Each case either survives (the deploy completes and the platform runs exactly it) or
// is refused clearly (non-zero exit, a message that says what to do, nothing half-deployed); the figures say which.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CliRun } from '../../helpers/cli.js';
import { DAG_ON, startFaultBed, type FaultBed, type FaultCase, type ProjectOptions } from '../../faults/bed.js';
import type { FaultProxy, FaultRule, ProxyLogEntry } from '../../faults/proxy.js';

let bed: FaultBed;

// Parse is not what these cases are about; it has its own suite (and its own interruption case here).
const SKIP_PARSE = { ASTRONOMER_SKIP_PARSE: 'true' };
const GET_DEPLOYMENT = { method: 'GET', path: /\/deployments\/[^/]+$/ };
const CREATE_DEPLOY = { method: 'POST', path: /\/deploys$/ };
const FINALIZE = { method: 'POST', path: /\/finalize$/ };
/** A layer's bytes: the PATCH that carries more than a config blob. */
const LAYER_PATCH = {
  method: 'PATCH',
  where: (r: { headers: Record<string, unknown> }) => r.headers['transfer-encoding'] !== undefined || Number(r.headers['content-length'] ?? 0) > 64 * 1024,
};
const MANIFEST_PUT = { method: 'PUT', path: /\/manifests\// };
const PUT_BLOCK = { method: 'PUT', query: { comp: 'block' as const } };
const PUT_BLOCK_LIST = { method: 'PUT', query: { comp: 'blocklist' as const } };

/** 2.5 MiB of incompressible DAG payload: three blocks and a block list. */
const BLOCKS: ProjectOptions = { dagPayloadBytes: 2_500_000 };
/** A fresh 2 MB image layer per project. */
const LAYER: ProjectOptions = { imagePayloadBytes: 2_000_000 };

interface Case {
  id: string;
  proxy: 'api' | 'registry' | 'blob';
  rules: FaultRule[];
  /** `--dags` (blob, API) or `--image` (registry). */
  mode: '--dags' | '--image';
  project?: ProjectOptions;
  expect: 'survived' | 'refused';
  message?: RegExp | RegExp[];
  /** Extra checks on what went over the wire, from the proxy's log of this case. */
  wire?: (entries: ProxyLogEntry[], run: CliRun) => void;
  /** Run with --verbose (retry decisions are debug output). */
  verbose?: boolean;
}

async function runCase(c: Case): Promise<void> {
  const project = await bed.project(c.project ?? {});
  const fault: FaultCase = await bed.begin(c.id, c.proxy, c.expect, { deploymentId: DAG_ON, project });
  const proxy: FaultProxy = bed[c.proxy];
  const mark = proxy.mark();
  for (const rule of c.rules) proxy.add(rule);
  const run = await bed.deploy([DAG_ON, c.mode, '--json', ...(c.verbose ? ['--verbose'] : [])], { cwd: project.dir, env: SKIP_PARSE });
  const injected = fault.proxyFaults();
  const verdict = c.expect === 'survived' ? await fault.survived(run) : await fault.refused(run, { message: c.message ?? /./, code: 1 });
  expect(verdict.detail, verdict.detail).toBeTruthy();
  expect(verdict.outcome, verdict.detail).toBe(c.expect);
  // Every case must really have injected its faults: a rule that never matched proves nothing.
  expect(injected, 'faults injected').toBeGreaterThan(0);
  c.wire?.(proxy.entries(mark), run);
}

/** Block ids of Put Block requests, in order, with what the storage answered. */
function blocks(entries: ProxyLogEntry[]): { id: string; status?: number; upstream?: number }[] {
  return entries
    .filter((e) => e.method === 'PUT' && new URLSearchParams(e.query).get('comp') === 'block')
    .map((e) => ({ id: new URLSearchParams(e.query).get('blockid') ?? '', status: e.status, upstream: e.upstreamStatus }));
}

/** No block that the storage already staged (answered 201) was sent again. */
function expectNoBlockResent(entries: ProxyLogEntry[]): void {
  const staged = new Set<string>();
  for (const b of blocks(entries)) {
    expect(staged.has(b.id), `block ${b.id} was sent again after it was staged`).toBe(false);
    if (b.upstream === 201) staged.add(b.id);
  }
  expect(staged.size).toBeGreaterThan(1);
}

beforeAll(async () => {
  bed = await startFaultBed('network');
  // The first push to a fresh registry carries the Runtime base layers: do it once, outside the cases.
  const warm = await bed.project();
  const run = await bed.deploy([DAG_ON, '--json'], { cwd: warm.dir, env: SKIP_PARSE });
  expect(run.code, run.stderr).toBe(0);
});

afterEach(() => {
  bed.closeDangling();
  bed.resetFaults();
});

afterAll(async () => {
  if (bed) console.log(`fault suite figures: ${await bed.stop()}`);
});

const api: Case[] = [
  {
    id: 'GET deployment answered 503 twice: retried with backoff',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: GET_DEPLOYMENT, action: { status: 503 }, count: 2 }],
    expect: 'survived',
    verbose: true,
    wire: (e, run) => {
      expect(e.filter((x) => x.method === 'GET' && GET_DEPLOYMENT.path.test(x.path)).map((x) => x.status)).toEqual([503, 503, 200]);
      // Exponential backoff with jitter: the n-th wait lies in [base·2^(n-1)/2, base·2^(n-1)] (base 250 ms).
      const waits = [...run.stderr.matchAll(/HTTP 503; retry (\d) in (\d+) ms/g)].map((m) => Number(m[2]));
      expect(waits).toHaveLength(2);
      expect(waits[0]).toBeGreaterThanOrEqual(125);
      expect(waits[0]).toBeLessThanOrEqual(250);
      expect(waits[1]).toBeGreaterThanOrEqual(250);
      expect(waits[1]).toBeLessThanOrEqual(500);
    },
  },
  {
    id: 'GET deployment answered 429 with Retry-After: waited and retried',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: GET_DEPLOYMENT, action: { status: 429, headers: { 'retry-after': '1' } } }],
    expect: 'survived',
  },
  {
    id: 'GET deployment answer reset mid-body: retried',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: GET_DEPLOYMENT, action: { reset: 'mid-body' } }],
    expect: 'survived',
  },
  {
    id: 'CreateDeploy answered 503: retried (503 means not processed)',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: CREATE_DEPLOY, action: { status: 503 } }],
    expect: 'survived',
  },
  {
    id: 'Finalize answered 500: retried',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: FINALIZE, action: { status: 500 } }],
    expect: 'survived',
  },
  {
    id: 'Finalize reset before it arrived: retried',
    proxy: 'api',
    mode: '--image',
    rules: [{ match: FINALIZE, action: { reset: 'before' } }],
    expect: 'survived',
  },
  {
    id: 'Finalize applied but its answer lost (reset after): the retry sees the deploy finalized',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: FINALIZE, action: { reset: 'after' } }],
    expect: 'survived',
    wire: (e) => expect(e.filter((x) => FINALIZE.path.test(x.path)).length).toBeGreaterThanOrEqual(2),
  },
  {
    id: 'Finalize answer cut after 20 bytes: the retry sees the deploy finalized',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: FINALIZE, action: { cutAfterBytes: 20, stream: 'response' } }],
    expect: 'survived',
  },
  {
    id: 'API throttled to 20 kB/s',
    proxy: 'api',
    mode: '--dags',
    rules: [{ action: { throttleBytesPerSec: 20_000 }, count: 'always' }],
    expect: 'survived',
  },
  {
    id: 'API answers 401: not retried, says to log in',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: GET_DEPLOYMENT, action: { status: 401, message: 'the token has been revoked' }, count: 'always' }],
    expect: 'refused',
    message: [/the token has been revoked/, /astro login|ASTRO_API_TOKEN/],
    wire: (e) => expect(e.filter((x) => x.status === 401)).toHaveLength(1),
  },
  {
    id: 'CreateDeploy answers 403: not retried',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: CREATE_DEPLOY, action: { status: 403, message: 'API token lacks permission to deploy' }, count: 'always' }],
    expect: 'refused',
    message: [/lacks permission to deploy/, /no access|organization and workspace/i],
    wire: (e) => expect(e.filter((x) => x.status === 403)).toHaveLength(1),
  },
  {
    id: 'CreateDeploy answers 400: not retried',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: CREATE_DEPLOY, action: { status: 400, message: 'invalid CreateDeployRequest: description: too long' }, count: 'always' }],
    expect: 'refused',
    message: /invalid CreateDeployRequest/,
    wire: (e) => expect(e.filter((x) => x.status === 400)).toHaveLength(1),
  },
  {
    id: 'CreateDeploy answers 500: not repeated blindly (it may have created one), says to run again',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: CREATE_DEPLOY, action: { status: 500, message: 'internal error' }, count: 'always' }],
    expect: 'refused',
    message: [/internal error \(HTTP 500/, /Nothing reached the platform.*Run astro deploy again/s],
  },
  {
    id: 'CreateDeploy connection reset before it arrived: refused, nothing half-deployed',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: CREATE_DEPLOY, action: { reset: 'before' }, count: 'always' }],
    expect: 'refused',
    message: /Could not reach the Astro API.*connection closed/,
  },
  {
    id: 'GET deployment answers 503 every time: gives up after its retries',
    proxy: 'api',
    mode: '--dags',
    rules: [{ match: GET_DEPLOYMENT, action: { status: 503, message: 'service unavailable' }, count: 'always' }],
    expect: 'refused',
    message: [/service unavailable \(HTTP 503/, /Run astro deploy again/],
    wire: (e) => expect(e.filter((x) => x.status === 503).length).toBeGreaterThan(1),
  },
];

const registry: Case[] = [
  {
    id: 'layer upload answered 408: retried',
    proxy: 'registry',
    mode: '--image',
    project: LAYER,
    rules: [{ match: LAYER_PATCH, action: { status: 408 } }],
    expect: 'survived',
  },
  {
    id: 'layer upload reset mid-body: retried',
    proxy: 'registry',
    mode: '--image',
    project: LAYER,
    rules: [{ match: LAYER_PATCH, action: { reset: 'mid-body' } }],
    expect: 'survived',
  },
  {
    id: 'layer upload cut after 256 KiB: retried',
    proxy: 'registry',
    mode: '--image',
    project: LAYER,
    rules: [{ match: LAYER_PATCH, action: { cutAfterBytes: 256 * 1024 } }],
    expect: 'survived',
  },
  {
    id: 'manifest PUT answered 503: push retried, layers already in the registry not sent again',
    proxy: 'registry',
    mode: '--image',
    project: LAYER,
    rules: [{ match: MANIFEST_PUT, action: { status: 503 } }],
    expect: 'survived',
    wire: (e) => {
      const failed = e.findIndex((x) => x.fault === 'status');
      expect(failed).toBeGreaterThan(0);
      expect(e.slice(0, failed).some((x) => x.method === 'PATCH')).toBe(true);
      expect(e.slice(failed + 1).filter((x) => x.method === 'PATCH' || x.method === 'POST')).toEqual([]);
    },
  },
  {
    id: 'manifest PUT answered 429: push retried',
    proxy: 'registry',
    mode: '--image',
    project: LAYER,
    rules: [{ match: MANIFEST_PUT, action: { status: 429 } }],
    expect: 'survived',
  },
  {
    id: 'registry throttled to 4 MB/s',
    proxy: 'registry',
    mode: '--image',
    project: LAYER,
    rules: [{ match: LAYER_PATCH, action: { throttleBytesPerSec: 4_000_000 }, count: 'always' }],
    expect: 'survived',
  },
  {
    id: 'registry answers 401 to every upload: the 403 guidance, not retried for long',
    proxy: 'registry',
    mode: '--image',
    project: LAYER,
    rules: [{ match: { method: 'POST', path: /\/blobs\/uploads\/$/ }, action: { status: 401 }, count: 'always' }],
    expect: 'refused',
    message: [/failed to push image due to authentication error/, /docker logout/],
  },
  {
    id: 'registry answers 403 to the manifest: the 403 guidance',
    proxy: 'registry',
    mode: '--image',
    project: LAYER,
    rules: [{ match: MANIFEST_PUT, action: { status: 403 }, count: 'always' }],
    expect: 'refused',
    message: [/failed to push image due to authentication error/, /docker logout/],
  },
  {
    id: 'registry answers 503 to every manifest PUT: gives up after its retries',
    proxy: 'registry',
    mode: '--image',
    project: LAYER,
    rules: [{ match: MANIFEST_PUT, action: { status: 503 }, count: 'always' }],
    expect: 'refused',
    message: [/failed to push image .* after \d+ attempts/, /was created but not finalized/],
  },
];

const blob: Case[] = [
  {
    id: 'Put Block answered 503 twice: retried, staged blocks not sent again',
    proxy: 'blob',
    mode: '--dags',
    project: BLOCKS,
    rules: [{ match: PUT_BLOCK, action: { status: 503 }, count: 2 }],
    expect: 'survived',
    wire: expectNoBlockResent,
  },
  {
    id: 'second Put Block reset mid-body: retried, staged blocks not sent again',
    proxy: 'blob',
    mode: '--dags',
    project: BLOCKS,
    rules: [{ match: PUT_BLOCK, after: 1, action: { reset: 'mid-body' } }],
    expect: 'survived',
    wire: expectNoBlockResent,
  },
  {
    id: 'Put Block cut after 300 kB: retried',
    proxy: 'blob',
    mode: '--dags',
    project: BLOCKS,
    rules: [{ match: PUT_BLOCK, action: { cutAfterBytes: 300_000 } }],
    expect: 'survived',
    wire: expectNoBlockResent,
  },
  {
    id: 'slow upload: throttled to 2 MB/s and Put Block List answered 408: commit retried without restaging',
    proxy: 'blob',
    mode: '--dags',
    project: BLOCKS,
    rules: [
      { match: { method: 'PUT' }, action: { throttleBytesPerSec: 2_000_000 }, count: 3 },
      { match: PUT_BLOCK_LIST, action: { status: 408 } },
    ],
    expect: 'survived',
    wire: (e) => {
      expectNoBlockResent(e);
      const firstList = e.findIndex((x) => new URLSearchParams(x.query).get('comp') === 'blocklist');
      expect(blocks(e.slice(firstList))).toEqual([]);
    },
  },
  {
    id: 'Put Block List applied but its answer lost: commit retried, the version finalized is whole',
    proxy: 'blob',
    mode: '--dags',
    project: BLOCKS,
    rules: [{ match: PUT_BLOCK_LIST, action: { reset: 'after' } }],
    expect: 'survived',
  },
  {
    // The soak's deploy #13 (seed 20261201): the local platform's blob endpoint held the blob's commit lock for the cut
    // request until Azurite gave up on its body (5 minutes), so every retry ran into the per-try timeout.
    id: 'small bundle Put Blob reset mid-body: retried at once',
    proxy: 'blob',
    mode: '--dags',
    rules: [{ match: { method: 'PUT' }, action: { reset: 'mid-body' } }],
    expect: 'survived',
    wire: (e) => expect(e.filter((x) => x.method === 'PUT').map((x) => x.fault ?? x.status)).toEqual(['reset-mid-body', 201]),
  },
  {
    id: 'small bundle Put Blob answered 500: retried',
    proxy: 'blob',
    mode: '--dags',
    rules: [{ match: { method: 'PUT' }, action: { status: 500 } }],
    expect: 'survived',
  },
  {
    id: 'storage answers 403 AuthenticationFailed: not retried, says to run the deploy again',
    proxy: 'blob',
    mode: '--dags',
    project: BLOCKS,
    rules: [{ match: { method: 'PUT' }, action: { status: 403 }, count: 'always' }],
    expect: 'refused',
    message: [/refused the DAG upload URL/, /Run the deploy again/],
    wire: (e) => expect(e.filter((x) => x.status === 403).length).toBeLessThanOrEqual(4),
  },
  {
    id: 'storage answers 503 to every Put Blob: gives up after its retries',
    proxy: 'blob',
    mode: '--dags',
    rules: [{ match: { method: 'PUT' }, action: { status: 503 }, count: 'always' }],
    expect: 'refused',
    message: [/Uploading the DAG bundle failed after \d+ attempts/, /was created but not finalized/],
  },
  {
    id: 'storage answers 404 to the block list: fatal, not retried',
    proxy: 'blob',
    mode: '--dags',
    project: BLOCKS,
    rules: [{ match: PUT_BLOCK_LIST, action: { status: 404, code: 'ContainerNotFound' }, count: 'always' }],
    expect: 'refused',
    message: /The storage refused the DAG bundle upload: HTTP 404 ContainerNotFound/,
  },
];

describe('faults between the CLI and the platform API', () => {
  for (const c of api) it(c.id, () => runCase(c));
});

describe('faults between the Docker engine and the registry', () => {
  for (const c of registry) it(c.id, () => runCase(c));
});

describe('faults between the CLI and the blob store', () => {
  for (const c of blob) it(c.id, () => runCase(c));

  it('SAS URL expires during a slow upload: refused, says the URL expired and to run the deploy again', async () => {
    const options = bed.stack.platform.options;
    const ttl = options.sasTtlSeconds;
    options.sasTtlSeconds = 2;
    try {
      const project = await bed.project(BLOCKS);
      const fault = await bed.begin('SAS URL expired mid-upload (the first block held past its expiry)', 'blob', 'refused', { deploymentId: DAG_ON, project });
      // The first block is held 3 s: the SAS (valid 2 s from the deploy's creation) has expired when it reaches storage.
      bed.blob.add({ match: PUT_BLOCK, action: { delayMs: 3_000 } });
      const run = await bed.deploy([DAG_ON, '--dags'], { cwd: project.dir, env: SKIP_PARSE });
      const verdict = await fault.refused(run, {
        code: 1,
        message: [/The DAG upload URL expired \(at .+\) before the upload finished/, /Run the deploy again/],
      });
      expect(verdict.outcome, verdict.detail).toBe('refused');
    } finally {
      options.sasTtlSeconds = ttl;
    }
  });
});
