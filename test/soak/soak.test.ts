// Soak (part of `npm test`; alone: `npm run test:soak`): 50 consecutive DAG-only deploys and 10 image deploys against
// the local platform, each with a fault drawn at random (seeded, so a failure can be replayed) in front of the API, the
// registry or the blob store. After every deploy the platform's state is checked against what the CLI said: a deploy
// that exited 0 runs on the Deployment exactly as reported; a refusal is clear and left nothing half-deployed. Nothing
// may be lost or misleading. With the default seed: 55 survived, 5 refused (the 403s and the 400), in about 2 minutes.
//
// ASTRO_SOAK_SEED, ASTRO_SOAK_DAG_DEPLOYS and ASTRO_SOAK_IMAGE_DEPLOYS change the run; ASTRO_SOAK_LOG=<file> shows
// where a run stands (the test's own output only comes at its end). Deploy #13 of the default seed (a Put Blob reset
// half-way) once took 4 minutes: the local platform's blob endpoint held the blob's commit lock for the cut request
// (fixed in test/platform/server/blob-proxy.ts; the fault case "small bundle Put Blob reset mid-body" guards it).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DAG_ON, startFaultBed, type FaultBed } from '../faults/bed.js';
import type { FaultRule } from '../faults/proxy.js';

let bed: FaultBed;
const SKIP_PARSE = { ASTRONOMER_SKIP_PARSE: 'true' };
const SEED = Number(process.env.ASTRO_SOAK_SEED ?? 20261201);
const DAG_DEPLOYS = Number(process.env.ASTRO_SOAK_DAG_DEPLOYS ?? 50);
const IMAGE_DEPLOYS = Number(process.env.ASTRO_SOAK_IMAGE_DEPLOYS ?? 10);
/** Seconds each soak deploy took, by fault: where a slow run spends its time. */
const durations: string[] = [];

/** mulberry32: a small seeded PRNG, so a run's faults can be replayed with ASTRO_SOAK_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Proxy = 'api' | 'registry' | 'blob';
interface Fault {
  name: string;
  proxy: Proxy;
  rule: FaultRule;
}

const GET_DEPLOYMENT = { method: 'GET', path: /\/deployments\/[^/]+$/ };
const CREATE_DEPLOY = { method: 'POST', path: /\/deploys$/ };
const FINALIZE = { method: 'POST', path: /\/finalize$/ };
const BLOB_PUT = { method: 'PUT' };
const REGISTRY_WRITE = { method: 'PATCH' };
const MANIFEST_PUT = { method: 'PUT', path: /\/manifests\// };

/** Faults for a deploy that talks to the API and the blob store (and the registry for image deploys). */
const DAG_FAULTS: Fault[] = [
  { name: 'GET Deployment 503', proxy: 'api', rule: { match: GET_DEPLOYMENT, action: { status: 503 } } },
  { name: 'GET Deployment 429 + Retry-After', proxy: 'api', rule: { match: GET_DEPLOYMENT, action: { status: 429, headers: { 'retry-after': '1' } } } },
  { name: 'GET Deployment reset mid-body', proxy: 'api', rule: { match: GET_DEPLOYMENT, action: { reset: 'mid-body' } } },
  { name: 'CreateDeploy 503', proxy: 'api', rule: { match: CREATE_DEPLOY, action: { status: 503 } } },
  { name: 'CreateDeploy 400', proxy: 'api', rule: { match: CREATE_DEPLOY, action: { status: 400, message: 'invalid CreateDeployRequest' } } },
  { name: 'finalize 500', proxy: 'api', rule: { match: FINALIZE, action: { status: 500 } } },
  { name: 'finalize reset before', proxy: 'api', rule: { match: FINALIZE, action: { reset: 'before' } } },
  { name: 'finalize reset after (applied)', proxy: 'api', rule: { match: FINALIZE, action: { reset: 'after' } } },
  { name: 'blob PUT 503', proxy: 'blob', rule: { match: BLOB_PUT, action: { status: 503 } } },
  { name: 'blob PUT 500 twice', proxy: 'blob', rule: { match: BLOB_PUT, action: { status: 500 }, count: 2 } },
  { name: 'blob PUT reset mid-body', proxy: 'blob', rule: { match: BLOB_PUT, action: { reset: 'mid-body' } } },
  { name: 'blob PUT 403', proxy: 'blob', rule: { match: BLOB_PUT, action: { status: 403 } } },
  { name: 'API throttled', proxy: 'api', rule: { action: { throttleBytesPerSec: 50_000 }, count: 'always' } },
];

const IMAGE_FAULTS: Fault[] = [
  ...DAG_FAULTS.filter((f) => f.proxy === 'api'),
  { name: 'registry PATCH 503', proxy: 'registry', rule: { match: REGISTRY_WRITE, action: { status: 503 } } },
  { name: 'registry manifest 500', proxy: 'registry', rule: { match: MANIFEST_PUT, action: { status: 500 } } },
  { name: 'registry reset mid-body', proxy: 'registry', rule: { match: REGISTRY_WRITE, action: { reset: 'mid-body' } } },
];

const outcomes: Record<string, number> = { survived: 0, refused: 0, lost: 0 };

async function soakOnce(index: number, fault: Fault | undefined, mode: '--dags' | '--image'): Promise<void> {
  const project = await bed.project(mode === '--image' ? { imagePayloadBytes: 200_000 } : {});
  const id = `soak ${mode} #${index}: ${fault?.name ?? 'no fault'}`;
  const c = await bed.begin(id, 'soak', 'survived', { deploymentId: DAG_ON, project });
  if (fault) bed[fault.proxy].add(fault.rule);
  const started = performance.now();
  // Where a hung deploy stands (the test's own output only comes at its end).
  if (process.env.ASTRO_SOAK_LOG) (await import('node:fs')).appendFileSync(process.env.ASTRO_SOAK_LOG, `start ${id}\n`);
  const run = await bed.deploy([DAG_ON, mode, '--json'], { cwd: project.dir, env: SKIP_PARSE });
  durations.push(`${((performance.now() - started) / 1000).toFixed(1)}s ${fault?.name ?? 'no fault'}`);
  const verdict = run.code === 0 ? await c.survived(run) : await c.refused(run, { message: /./, code: 1, json: true });
  outcomes[verdict.outcome] = (outcomes[verdict.outcome] ?? 0) + 1;
  expect(verdict.outcome, `${id}\n${verdict.detail}\n--- stderr ---\n${run.stderr}`).not.toBe('lost');
  // No fault (or one the retries absorb) must not be refused.
  if (!fault) expect(verdict.outcome, `${id}: ${run.stderr}`).toBe('survived');
}

beforeAll(async () => {
  bed = await startFaultBed('soak');
  const warm = await bed.project();
  const run = await bed.deploy([DAG_ON, '--json'], { cwd: warm.dir, env: SKIP_PARSE });
  expect(run.code, run.stderr).toBe(0);
});

afterEach(() => {
  bed.closeDangling();
  bed.resetFaults();
});

afterAll(async () => {
  if (bed) console.log(`soak (seed ${SEED}): ${JSON.stringify(outcomes)}\n  ${durations.join('\n  ')}\nfault suite figures: ${await bed.stop()}`);
});

describe(`soak with random faults (seed ${SEED})`, () => {
  it('50 consecutive DAG-only deploys: each survives or is refused clearly, and the platform records what the CLI said', async () => {
    const random = prng(SEED);
    for (let i = 1; i <= DAG_DEPLOYS; i++) {
      // One deploy in five runs without a fault: the platform must still take every clean deploy.
      const fault = random() < 0.2 ? undefined : DAG_FAULTS[Math.floor(random() * DAG_FAULTS.length)];
      await soakOnce(i, fault, '--dags');
      bed.resetFaults();
    }
    expect(outcomes.survived).toBeGreaterThan(0);
  }, 1_200_000);

  it('10 consecutive image deploys: the same, with faults on the registry too', async () => {
    const random = prng(SEED + 1);
    for (let i = 1; i <= IMAGE_DEPLOYS; i++) {
      const fault = random() < 0.2 ? undefined : IMAGE_FAULTS[Math.floor(random() * IMAGE_FAULTS.length)];
      await soakOnce(i, fault, '--image');
      bed.resetFaults();
    }
  }, 900_000);
});
