import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { openAstroSession } from '../../../src/auth/astro-access.js';
import { AstroConfig, configPaths } from '../../../src/config/store.js';
import { readEnv } from '../../../src/env.js';
import { FakePlatform } from './fake-platform.js';

let home: string;
let fake: FakePlatform;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-access-'));
  fake = await new FakePlatform().start();
  await fs.mkdir(path.join(home, '.astro'));
  await fs.writeFile(path.join(home, '.astro', 'config.yaml'), stringify({ local: { core: fake.url } }));
});
afterEach(async () => {
  await fake.stop();
  await fs.rm(home, { recursive: true, force: true });
});

describe('openAstroSession', () => {
  it('with ASTRO_API_TOKEN: registers the token and sends no request to open the session (no organization list)', async () => {
    fake.organizations = [
      { id: 'org-0', name: 'Other', product: 'HYBRID' },
      { id: 'org-1', name: 'Stellar Labs', product: 'HOSTED' },
    ];
    const token = fake.apiToken(['workspaceId:ws-1', 'organizationId:org-1']);
    const secrets: (string | undefined)[] = [];
    const notices: string[] = [];
    const config = await AstroConfig.load(configPaths(home, home));
    const env = readEnv({ ASTRO_HOME: home, ASTRO_DOMAIN: 'localhost', ASTRO_API_TOKEN: token });
    const { session, client } = await openAstroSession(config, env, {
      clientVersion: 'test',
      addSecret: (s) => secrets.push(s),
      notice: (m) => notices.push(m),
    });
    expect(session).toMatchObject({ organizationId: 'org-1', workspaceId: 'ws-1', source: 'api-token', isApiToken: true });
    expect(session.organizationProduct).toBeUndefined();
    expect(fake.requests).toEqual([]);
    expect(secrets).toContain(token);
    expect(notices).toEqual(['Using an Astro API Token']);
    expect((await client.listDeployments('org-1', { workspaceIds: ['ws-1'] })).map((d) => d.id)).toEqual(['dep-1']);
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/organizations/org-1/deployments']);
  });
});
