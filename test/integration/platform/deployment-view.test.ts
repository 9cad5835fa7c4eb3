/**
 * The Deployment View (the page both CLIs link to after a deploy on `localhost`), driven in Debian Chromium through
 * playwright-core: workspace list → workspace → Deployment, which shows status, Docker image tag, DAG bundle version
 * and the deploy history. A screenshot of the Deployment page goes to the test output dir.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockBlobClient } from '@azure/storage-blob';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoPorts, repoRoot } from '../../platform/stack.js';
import { buildTinyImage, dagBundle, ids, pushImage, removeDir, removeImage, sampleDag, startTestStack, waitFor, type TestStack } from './helpers.js';

const outputDir = process.env.ASTRO_TEST_OUTPUT_DIR ?? join(repoRoot, '.state', 'test-output');

let t: TestStack;
let browser: BrowserContext;
let profileDir: string;
const images: string[] = [];
const orgToken = () => t.token('cltokorgstellar0000000000');
const deploysPath = (dep: string) => `/v1/organizations/${ids.orgStellar}/deployments/${dep}/deploys`;
let imageDeploy: any;
let dagDeploy: any;

async function upload(url: string, files: Record<string, string>): Promise<string> {
  const result = await new BlockBlobClient(url).uploadData(await dagBundle(files));
  return result._response.headers.get('x-ms-version-id')!;
}

async function settled(dep: string) {
  return waitFor(`deployment ${dep} to settle`, async () => {
    const d = (await t.api(`/v1/organizations/${ids.orgStellar}/deployments/${dep}`, { token: orgToken() })).json;
    return d.status === 'DEPLOYING' ? undefined : d;
  });
}

beforeAll(async () => {
  profileDir = mkdtempSync(join(tmpdir(), 'astro-view-chromium-'));
  [t, browser] = await Promise.all([
    startTestStack(),
    chromium.launchPersistentContext(profileDir, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    }),
  ]);

  // What a full deploy and then a DAG-only deploy leave behind, made through the same API the CLIs use.
  const created = (
    await t.api(deploysPath(ids.depDagOn), {
      method: 'POST',
      token: orgToken(),
      body: {
        type: 'IMAGE_AND_DAG',
        description: 'First deploy <b>not bold</b>',
        git: {
          provider: 'GITHUB',
          commitSha: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
          branch: 'main',
          account: 'stellar',
          repo: 'pipelines',
          commitUrl: 'https://github.com/stellar/pipelines/commit/a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
        },
      },
    })
  ).json;
  const ref = `${created.imageRepository}:${created.imageTag}`;
  await buildTinyImage(ref, { labels: { 'io.astronomer.docker.runtime.version': '3.1-8' } });
  images.push(ref);
  expect((await pushImage(ref, { username: 'cli', password: orgToken(), serveraddress: t.stack.endpoints.registry.host })).error).toBeUndefined();
  const v1 = await upload(created.dagsUploadUrl, { 'dags/hello.py': sampleDag });
  imageDeploy = (await t.api(`${deploysPath(ids.depDagOn)}/${created.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: v1 } }))
    .json;
  const dagOnly = (await t.api(deploysPath(ids.depDagOn), { method: 'POST', token: orgToken(), body: { type: 'DAG_ONLY', description: 'Only DAGs' } })).json;
  const v2 = await upload(dagOnly.dagsUploadUrl, { 'dags/hello.py': `${sampleDag}# v2\n` });
  dagDeploy = (await t.api(`${deploysPath(ids.depDagOn)}/${dagOnly.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: v2 } })).json;
  await settled(ids.depDagOn);
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(images.map(removeImage));
  await t?.stop();
  if (t) removeDir(t.stateDir);
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

async function open(path: string): Promise<Page> {
  const page = await browser.newPage();
  const response = await page.goto(`http://127.0.0.1:${t.stack.endpoints.view.port}${path}`);
  expect(response?.status()).toBe(200);
  return page;
}

describe('Deployment View', () => {
  it('listens on its own ephemeral port in tests (5000 only on the demo ports) and says where in endpoints.json', () => {
    expect(demoPorts.view).toBe(5000);
    expect(t.stack.endpoints.view.port).toBeGreaterThan(0);
    expect(t.stack.endpoints.view.deploymentUrlPattern).toBe(`http://localhost:${t.stack.endpoints.view.port}/<workspaceId>/deployments/<deploymentId>`);
  });

  it('leads from the workspaces to the Deployment, which shows status, image tag, bundle version and deploy history', async () => {
    const page = await open('/');
    await page.getByRole('link', { name: 'Data Platform' }).click();
    await page.waitForURL(`**/${ids.wsData}`);
    const row = page.locator('#deployments tr', { hasText: 'dag-deploy-on' });
    await expect(row.locator('[data-status]').getAttribute('data-status')).resolves.toBe('HEALTHY');
    await row.getByRole('link', { name: 'dag-deploy-on' }).click();
    await page.waitForURL(`**/${ids.wsData}/deployments/${ids.depDagOn}`);

    expect(await page.locator('#deployment-name').textContent()).toBe('dag-deploy-on');
    expect(await page.locator('dl.facts [data-status]').getAttribute('data-status')).toBe('HEALTHY');
    expect((await page.locator('#image-tag').textContent())?.trim()).toBe(imageDeploy.imageTag);
    expect((await page.locator('#dag-bundle-version').textContent())?.trim()).toBe(dagDeploy.dagTarballVersion);

    const rows = page.locator('#deploy-history tr[data-deploy-id]');
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-deploy-id')))).toEqual([dagDeploy.id, imageDeploy.id]);
    const first = rows.nth(1);
    const cells = await first.locator('td').allTextContents();
    expect(cells[1]).toBe('IMAGE_AND_DAG');
    expect(cells[2]).toContain('DEPLOYED');
    expect(cells[3]).toBe(imageDeploy.imageTag);
    expect(cells[4]).toBe(imageDeploy.dagTarballVersion);
    // Descriptions are text, never markup.
    expect(cells[5]).toBe('First deploy <b>not bold</b>');
    expect(await first.locator('b').count()).toBe(0);
    expect(await first.getByRole('link', { name: 'a1b2c3d' }).getAttribute('href')).toBe(
      'https://github.com/stellar/pipelines/commit/a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    );
    expect(cells[7]).toContain('stellar-organization-token');

    mkdirSync(outputDir, { recursive: true });
    const shot = await page.screenshot({ path: join(outputDir, 'deployment-view.png'), fullPage: true });
    expect(shot.length).toBeGreaterThan(1000);
    await page.close();
  });

  it('shows a rejected bundle as FAILED with the reason, and the Deployment UNHEALTHY', async () => {
    const created = (await t.api(deploysPath(ids.depAirflow2), { method: 'POST', token: orgToken(), body: { type: 'DAG_ONLY' } })).json;
    const version = await upload(created.dagsUploadUrl, { 'hello.py': sampleDag });
    await t.api(`${deploysPath(ids.depAirflow2)}/${created.id}/finalize`, { method: 'POST', token: orgToken(), body: { dagTarballVersion: version } });
    await settled(ids.depAirflow2);
    const page = await open(`/${ids.wsData}/deployments/${ids.depAirflow2}`);
    expect(await page.locator('dl.facts [data-status]').getAttribute('data-status')).toBe('UNHEALTHY');
    expect(await page.locator('#status-reason').textContent()).toContain('no entries under dags/');
    expect(await page.locator(`#deploy-history tr[data-deploy-id="${created.id}"] [data-status]`).getAttribute('data-status')).toBe('FAILED');
    await page.close();
  });

  it("answers TLS on the same port, for the https:// link Astronomer's CLI prints after an image deploy", async () => {
    const path = `/${ids.wsData}/deployments/${ids.depDagOn}`;
    // Verified against the platform's own certificate (localhost, 127.0.0.1), not with checks turned off.
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      httpsGet(
        `https://localhost:${t.stack.endpoints.view.port}${path}`,
        { ca: readFileSync(t.stack.endpoints.view.tlsCertPath), lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]) },
        (r) => {
          let body = '';
          r.setEncoding('utf8');
          r.on('data', (c: string) => (body += c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        },
      ).on('error', reject);
    });
    expect(res.status).toBe(200);
    expect(res.body).toContain(imageDeploy.imageTag);
    expect(t.stack.endpoints.view.httpsUrl).toBe(`https://localhost:${t.stack.endpoints.view.port}`);

    const context = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await (await context.newContext({ ignoreHTTPSErrors: true })).newPage();
      const response = await page.goto(`https://127.0.0.1:${t.stack.endpoints.view.port}${path}`);
      expect(response?.status()).toBe(200);
      expect((await page.locator('#image-tag').textContent())?.trim()).toBe(imageDeploy.imageTag);
    } finally {
      await context.close();
    }
  });

  it('answers 404 for an unknown workspace, an unknown Deployment, or a Deployment of another workspace', async () => {
    const base = `http://127.0.0.1:${t.stack.endpoints.view.port}`;
    for (const path of [
      '/clwksnosuch000000000000',
      `/${ids.wsData}/deployments/cldepnosuch00000000000000`,
      `/${ids.wsAnalytics}/deployments/${ids.depDagOn}`,
    ]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toContain('text/html');
    }
  });
});
