import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { decodeJwtClaims } from '../../../src/auth/jwt.js';
import { readConfigFile } from '../../../src/config/file.js';
import { createAstroClient } from '../../../src/platform/astro/client.js';
import { CHECKED_ONCE } from '../../../src/util/checked-once.js';
import { readJsonFile } from '../../../src/util/json-file.js';

/** Counts the code zod generates (it builds its compiled parsers with `new Function`) while `work` runs. */
async function generatedDuring(work: () => unknown): Promise<number> {
  const original = globalThis.Function;
  let made = 0;
  globalThis.Function = new Proxy(original, {
    construct(target, args: unknown[]) {
      made += 1;
      return Reflect.construct(target, args) as object;
    },
  });
  try {
    await work();
  } finally {
    globalThis.Function = original;
  }
  return made;
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'astro-checked-once-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('values checked once compile no parser', () => {
  it('zod compiles one for an object schema by default, and none with CHECKED_ONCE', async () => {
    const shape = () => z.object({ id: z.string(), n: z.number(), nested: z.object({ ok: z.boolean() }) });
    const value = { id: 'a', n: 1, nested: { ok: true } };
    const compiled = shape();
    expect(await generatedDuring(() => compiled.parse(value))).toBeGreaterThan(0);
    const once = shape();
    expect(await generatedDuring(() => once.parse(value, CHECKED_ONCE))).toBe(0);
    expect(once.safeParse({ id: 1 }, CHECKED_ONCE).success).toBe(false);
  });

  it('nor do the API client, the config file, the cache files and token claims', async () => {
    const deployment = { id: 'dep', name: 'd', organizationId: 'o', workspaceId: 'w', status: 'HEALTHY', isDagDeployEnabled: true };
    const fetch = async () => new Response(JSON.stringify(deployment), { status: 200, headers: { 'content-type': 'application/json' } });
    const client = createAstroClient({ baseUrl: 'http://api.test/v1', token: () => 'Bearer t', clientIdentifier: 'cli', clientVersion: '1', fetch });
    const configFile = path.join(dir, 'config.yaml');
    fs.writeFileSync(configFile, 'context: localhost\ncontexts:\n  localhost:\n    domain: localhost\n    workspace: w\nlocal:\n  core: http://localhost:1\n');
    const jsonFile = path.join(dir, 'origins.json');
    fs.writeFileSync(jsonFile, JSON.stringify({ a: { origin: 'https://x.test' } }));
    const claims = Buffer.from(JSON.stringify({ sub: 's', org_id: 'o', permissions: ['organizationId:o'] })).toString('base64url');

    let read: unknown[] = [];
    const made = await generatedDuring(async () => {
      read = [
        await client.getDeployment('o', 'dep'),
        await readConfigFile(configFile),
        await readJsonFile(jsonFile, z.record(z.string(), z.object({ origin: z.string() }))),
        decodeJwtClaims(`Bearer x.${claims}.y`),
      ];
    });
    expect(made).toBe(0);
    // ...and still check what they read.
    expect(read.map((r) => (r as { id?: string; context?: string; a?: unknown; org_id?: string } | undefined) ?? {})).toMatchObject([
      { id: 'dep' },
      { context: 'localhost' },
      { a: { origin: 'https://x.test' } },
      { org_id: 'o' },
    ]);
  });
});
