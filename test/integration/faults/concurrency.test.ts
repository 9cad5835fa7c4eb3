// Two deploys to the same Deployment at once. The fault proxies hold both at the worst moment (both block lists
// committed together; both images built before either is pushed), then let them race. Both must finish, each with
// its own image tag, block ids and bundle version, and the Deployment must run exactly the one finalized last.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CliRun } from '../../helpers/cli.js';
import { DAG_ON, startFaultBed, type FaultBed } from '../../faults/bed.js';

let bed: FaultBed;
const SKIP_PARSE = { ASTRONOMER_SKIP_PARSE: 'true' };

beforeAll(async () => {
  bed = await startFaultBed('concurrency');
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

/** Staged block ids since `since`, grouped by their 12-byte per-upload prefix. */
function stagedBlocksByUpload(since: number): Map<string, Set<string>> {
  const byUpload = new Map<string, Set<string>>();
  for (const e of bed.blob.entries(since)) {
    const query = new URLSearchParams(e.query);
    if (query.get('comp') !== 'block' || e.upstreamStatus !== 201) continue;
    const id = query.get('blockid') ?? '';
    const prefix = Buffer.from(id, 'base64').subarray(0, 12).toString('hex');
    if (!byUpload.has(prefix)) byUpload.set(prefix, new Set());
    byUpload.get(prefix)!.add(id);
  }
  return byUpload;
}

describe('two deploys to the same Deployment at once', () => {
  it('DAG-only deploys whose block lists are committed at the same moment: both finish, each version whole', async () => {
    const [a, b] = await Promise.all([bed.project({ dagPayloadBytes: 2_500_000 }), bed.project({ dagPayloadBytes: 2_500_000 })]);
    const cases = await Promise.all(
      [a, b].map((p, i) =>
        bed.begin(`DAG-only deploy ${'AB'[i]} of two at once, commits raced`, 'concurrency', 'survived', { deploymentId: DAG_ON, project: p }),
      ),
    );
    const mark = bed.blob.mark();
    bed.blob.add({ name: 'commit-barrier', match: { method: 'PUT', query: { comp: 'blocklist' } }, action: { hold: 'request' }, count: 2 });
    const runs = Promise.all([a, b].map((p) => bed.deploy([DAG_ON, '--dags', '--json'], { cwd: p.dir, env: SKIP_PARSE })));
    await bed.blob.held('commit-barrier', 2);
    bed.blob.release('commit-barrier');
    const [runA, runB] = (await runs) as [CliRun, CliRun];

    const verdicts = [
      await cases[0]!.survived(runA, { allowLaterDeploy: true, faults: 1 }),
      await cases[1]!.survived(runB, { allowLaterDeploy: true, faults: 1 }),
    ];
    for (const v of verdicts) expect(v.outcome, v.detail).toBe('survived');

    const docs = [JSON.parse(runA.stdout), JSON.parse(runB.stdout)] as { deployId: string; dags: { version: string } }[];
    expect(docs[0]!.dags.version).not.toBe(docs[1]!.dags.version);
    // The Deployment runs the bundle of whichever deploy finalized last, and that bundle is whole.
    const records = bed.deploys(DAG_ON).filter((d) => docs.some((x) => x.deployId === d.id));
    const last = records.sort((x, y) => (x.finalizedAt ?? '').localeCompare(y.finalizedAt ?? '')).at(-1)!;
    expect(bed.deployment(DAG_ON)).toMatchObject({ dagTarballVersion: last.dagTarballVersion, rollout: { deployId: last.id } });
    // Block ids are unique to each upload (a random 12-byte prefix per upload): two uploads, three blocks each, no id shared.
    const uploads = [...stagedBlocksByUpload(mark).values()];
    expect(uploads.map((ids) => ids.size)).toEqual([3, 3]);
    const conflicts = bed.blob.entries(mark).filter((e) => new URLSearchParams(e.query).get('comp') === 'blocklist' && e.status === 400).length;
    // The barrier makes the second commit meet the first one's: Azure (and Azurite) drop its staged blocks.
    expect(conflicts, 'InvalidBlockList answers').toBeGreaterThanOrEqual(1);
    console.log(`concurrent DAG-only deploys: ${conflicts} InvalidBlockList answer(s) survived by restaging`);
  });

  it('full deploys whose images are both built before either is pushed: each pushes its own image under its own tag', async () => {
    const [a, b] = await Promise.all([bed.project({ dagPayloadBytes: 1_500_000 }), bed.project({ dagPayloadBytes: 1_500_000 })]);
    const cases = await Promise.all(
      [a, b].map((p, i) => bed.begin(`full deploy ${'AB'[i]} of two at once, builds raced`, 'concurrency', 'survived', { deploymentId: DAG_ON, project: p })),
    );
    bed.api.add({ name: 'create-barrier', match: { method: 'POST', path: /\/deploys$/ }, action: { hold: 'request' }, count: 2 });
    const runs = Promise.all([a, b].map((p) => bed.deploy([DAG_ON, '--json', '--description', p.marker], { cwd: p.dir, env: SKIP_PARSE })));
    await bed.api.held('create-barrier', 2);
    bed.api.release('create-barrier');
    const [runA, runB] = (await runs) as [CliRun, CliRun];

    const verdicts = [
      await cases[0]!.survived(runA, { allowLaterDeploy: true, faults: 1, imageDescription: a.marker }),
      await cases[1]!.survived(runB, { allowLaterDeploy: true, faults: 1, imageDescription: b.marker }),
    ];
    for (const v of verdicts) expect(v.outcome, v.detail).toBe('survived');
    const docs = [JSON.parse(runA.stdout), JSON.parse(runB.stdout)] as { image: { tag: string; digest: string } }[];
    expect(docs[0]!.image.tag).not.toBe(docs[1]!.image.tag);
    expect(docs[0]!.image.digest).not.toBe(docs[1]!.image.digest);
  });
});
