/**
 * Image mode: the harness runs in a throwaway container of the Runtime image (no network, memory limit, project
 * mounted read-only). Same verdicts as on the host, hostile files contained, no container left behind.
 */
import fs from 'node:fs';
import Docker from 'dockerode';
import { createDockerEngine } from '../../../src/image/engine.js';
import { afterAll, describe, expect, it } from 'vitest';
import { runParse, type ParseOptions, type ParseProgressEvent } from '../../../src/parse/index.js';
import { airflowPython, copyFixture, dockerSocket, expectValidReport, removeTempDirs, runtimeImage, tempDir } from './helpers.js';

const docker = new Docker({ socketPath: dockerSocket() });
const cacheDir = tempDir('astro-parse-cache-');
afterAll(removeTempDirs);

async function sandboxContainers(): Promise<number> {
  const containers = await docker.listContainers({ all: true, filters: { label: ['dev.astro-deploy-cli.sandbox=parse'] } });
  return containers.length;
}

async function parseInImage(projectDir: string, extra: Partial<ParseOptions> = {}) {
  const events: ParseProgressEvent[] = [];
  const report = await runParse(
    { projectDir, image: runtimeImage(), hostEnv: { PATH: process.env.PATH }, cacheDir, onProgress: (e) => events.push(e), ...extra },
    { docker: createDockerEngine({ socketPath: dockerSocket() }) },
  );
  expectValidReport(report);
  return { report, startedAirflow: events.some((e) => e.type === 'airflow-ready') };
}

describe('parse inside the Runtime image', () => {
  it('gives the same verdicts as on the host', async () => {
    const projectDir = copyFixture('broken');
    const inImage = await parseInImage(projectDir, { noCache: true });
    const onHost = await runParse({ projectDir, python: airflowPython(), hostEnv: { PATH: process.env.PATH }, cacheDir, noCache: true });
    const verdicts = (r: typeof onHost) => r.files.map((f) => [f.path, f.status, f.errors.map((e) => e.kind), f.dagIds.sort()]).sort();
    expect(verdicts(inImage.report)).toEqual(verdicts(onHost));
    expect(inImage.report.summary).toMatchObject({ mode: 'image', passed: false, airflowVersion: '3.1.8' });
    expect(inImage.report.summary.sandbox).toMatchObject({ network: 'none', projectReadOnly: true, projectView: 'copy' });
    expect(await sandboxContainers()).toBe(0);
  });

  it('reuses cached verdicts without starting a container', async () => {
    const projectDir = copyFixture('clean');
    const cold = await parseInImage(projectDir);
    expect(cold.startedAirflow).toBe(true);
    expect(cold.report.summary.passed).toBe(true);
    const warm = await parseInImage(projectDir);
    expect(warm.startedAirflow).toBe(false);
    expect(warm.report.summary.cached).toBe(cold.report.summary.files);
  });

  it('contains hostile DAG files', async () => {
    const projectDir = copyFixture('hostile');
    const secret = 'image-mode-secret-c4n4ry';
    fs.writeFileSync(`${projectDir}/.env`, 'ASTRO_API_TOKEN\nCANARY_PORT=9\n');
    const { report } = await parseInImage(projectDir, {
      noCache: true,
      timeoutSeconds: 3,
      memoryLimitMb: 512,
      hostEnv: { PATH: process.env.PATH, ASTRO_API_TOKEN: secret },
    });
    const kinds = Object.fromEntries(report.files.map((f) => [f.path.replace(/^dags\/|\.py$/g, ''), f.status === 'ok' ? 'ok' : f.errors[0]?.kind]));
    expect(kinds).toMatchObject({
      well_behaved: 'ok',
      stdout_flood: 'ok',
      secret_reader: 'ok',
      raw_fork: 'ok',
      infinite_loop: 'import',
      stubborn_loop: 'timeout',
      hard_exit: 'crash',
      segfault: 'crash',
      // Forks are allowed, as in Astronomer's container (under the container's process cap).
      fork_bomb: 'ok',
      memory_bomb: 'import',
      socket_local: 'import',
      socket_outside: 'import',
      // The project is copied into the container, as Astronomer's parse container gets it: writes land in the copy.
      writes_project: 'ok',
      // The container's own filesystem is writable (and thrown away); the host's is not mounted at all.
      writes_system: 'ok',
      proc_probe: 'ok',
      home_probe: 'ok',
      pids_cap: 'ok',
    });
    expect(JSON.stringify(report)).not.toContain(secret);
    expect(report.summary.sandbox.hostFilesystem).toBe('not-mounted');
    expect(fs.existsSync(`${projectDir}/dags/planted.py`)).toBe(false);
    expect(await sandboxContainers()).toBe(0);
  });
});
