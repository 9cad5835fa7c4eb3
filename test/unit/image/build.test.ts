import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InterruptedError, UserError } from '../../../src/errors.js';
import {
  BUILD_FAILED_MESSAGE,
  buildProjectImage,
  ImageBuildError,
  parseBuildSecretSpec,
  parseStepLine,
  resolveBuildSecrets,
  stepName,
  type BuildProgressEvent,
} from '../../../src/image/build.js';
import { DESCRIPTION_LABEL, RUNTIME_VERSION_LABEL } from '../../../src/image/labels.js';
import { FakeEngine } from './fake-engine.js';

let project: string;
beforeAll(async () => {
  project = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-build-unit-'));
  await fs.writeFile(path.join(project, 'Dockerfile'), 'FROM base\nCOPY . .\n');
  await fs.writeFile(path.join(project, 'secret.txt'), 'file-secret');
});
afterAll(async () => {
  await fs.rm(project, { recursive: true, force: true });
});

describe('parseStepLine', () => {
  it.each([
    ['Step 2/5 : RUN pip install -r requirements.txt', { index: 2, total: 5, instruction: 'RUN pip install -r requirements.txt', cached: false }],
    ['[3/4] COPY . .', { index: 3, total: 4, instruction: 'COPY . .', cached: false }],
    ['[builder 1/2] FROM base AS builder (cached)', { index: 1, total: 2, instruction: 'FROM base AS builder', cached: true }],
    ['[internal] load build definition from Dockerfile', undefined],
    [' ---> Running in 0123', undefined],
  ])('%s', (line, expected) => {
    expect(parseStepLine(line)).toEqual(expected);
  });
});

describe('buildProjectImage', () => {
  it('sends the context for linux/amd64, reports steps and log lines, and returns the Runtime label', async () => {
    const engine = new FakeEngine();
    engine.buildMessages = [
      { stream: 'Step 1/2 : FROM base' },
      { stream: '\n' },
      { stream: ' ---> abc\nStep 2/2 : COPY . .\n' },
      { aux: { ID: 'sha256:x' } },
      { stream: 'Successfully tagged ns/airflow:latest\n' },
    ];
    const events: BuildProgressEvent[] = [];
    const originalBuild = engine.build.bind(engine);
    let platform: string | undefined;
    let labels: Record<string, string> | undefined;
    engine.build = (request) => {
      platform = request.platform;
      labels = request.labels;
      return originalBuild({ ...request, labels: { ...request.labels, [RUNTIME_VERSION_LABEL]: '3.1-8' } });
    };
    const built = await buildProjectImage(engine, {
      projectDir: project,
      tag: 'ns/airflow:latest',
      labels: { [DESCRIPTION_LABEL]: 'd' },
      onProgress: (e) => events.push(e),
    });
    expect(platform).toBe('linux/amd64');
    expect(labels).toEqual({ [DESCRIPTION_LABEL]: 'd' });
    expect(engine.contextBytes).toBeGreaterThan(0);
    expect(built.runtimeVersion).toBe('3.1-8');
    expect(events.filter((e) => e.type === 'build-step')).toEqual([
      { type: 'build-step', index: 1, total: 2, instruction: 'FROM base', cached: false },
      { type: 'build-step', index: 2, total: 2, instruction: 'COPY . .', cached: false },
    ]);
    expect(events.filter((e) => e.type === 'build-log').map((e) => (e as { line: string }).line)).toEqual([
      'Step 1/2 : FROM base',
      ' ---> abc',
      'Step 2/2 : COPY . .',
      'Successfully tagged ns/airflow:latest',
    ]);
    expect(events[0]).toEqual({ type: 'build-start', tag: 'ns/airflow:latest', platform: 'linux/amd64', builder: 'classic' });
    expect(events.at(-1)).toMatchObject({ type: 'build-done', tag: 'ns/airflow:latest' });
  });

  it('names the failing step and keeps the last lines when the stream reports an error', async () => {
    const engine = new FakeEngine();
    engine.buildMessages = [
      { stream: 'Step 1/3 : FROM base\n' },
      { stream: 'Step 2/3 : RUN pip install nope\n' },
      { stream: 'ERROR: No matching distribution found for nope\n' },
      {
        error: "The command '/bin/sh -c pip install nope' returned a non-zero code: 1",
        errorDetail: { code: 1, message: "The command '/bin/sh -c pip install nope' returned a non-zero code: 1" },
      },
    ];
    const error = await buildProjectImage(engine, { projectDir: project, tag: 't:1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageBuildError);
    const buildError = error as ImageBuildError;
    expect(buildError.message).toBe(BUILD_FAILED_MESSAGE);
    expect(buildError.failedStep).toEqual({ index: 2, total: 3, instruction: 'RUN pip install nope' });
    expect(buildError.logTail.at(-1)).toBe('ERROR: No matching distribution found for nope');
    expect(buildError.nextStep).toContain("Step 2/3 (RUN pip install nope) failed: The command '/bin/sh -c pip install nope' returned a non-zero code: 1");
  });

  it('refuses to report success when the engine built nothing', async () => {
    const engine = new FakeEngine();
    engine.build = async function* () {
      yield { stream: 'Step 1/1 : FROM base\n' };
    };
    await expect(buildProjectImage(engine, { projectDir: project, tag: 't:2' })).rejects.toThrow(ImageBuildError);
  });

  it('uses BuildKit when secrets are given', async () => {
    const engine = new FakeEngine();
    const events: BuildProgressEvent[] = [];
    let secrets: unknown;
    const originalBuild = engine.build.bind(engine);
    engine.build = (request) => {
      secrets = request.secrets;
      return originalBuild(request);
    };
    await buildProjectImage(engine, { projectDir: project, tag: 't:3', secrets: [{ id: 's', data: Buffer.from('v') }], onProgress: (e) => events.push(e) });
    expect(events[0]).toMatchObject({ builder: 'buildkit' });
    expect(secrets).toEqual([{ id: 's', data: Buffer.from('v') }]);
  });

  it("builds with the engine's own choice of builder unless one is asked for, and on refused BuildKit with the classic builder", async () => {
    const engine = new FakeEngine();
    engine.defaultBuilder = 'buildkit';
    engine.buildMessages = [{ aux: { ID: 'sha256:y' } }];
    const starts = (events: BuildProgressEvent[]) => events.filter((e) => e.type === 'build-start').map((e) => (e as { builder: string }).builder);
    const events: BuildProgressEvent[] = [];
    await buildProjectImage(engine, { projectDir: project, tag: 't:6', onProgress: (e) => events.push(e) });
    await buildProjectImage(engine, { projectDir: project, tag: 't:7', builder: 'classic', onProgress: (e) => events.push(e) });
    expect(engine.builders).toEqual(['buildkit', 'classic']);
    expect(starts(events)).toEqual(['buildkit', 'classic']);

    // An engine without BuildKit answers the request with an error: the build runs again on the classic builder,
    // with the whole context sent again.
    engine.refuseBuildkit = true;
    events.length = 0;
    engine.builders.length = 0;
    const built = await buildProjectImage(engine, { projectDir: project, tag: 't:8', onProgress: (e) => events.push(e) });
    expect(built.imageId).toBe('sha256:y');
    expect(engine.builders).toEqual(['buildkit', 'classic']);
    expect(starts(events)).toEqual(['buildkit', 'classic']);
    expect(engine.contextBytes).toBeGreaterThan(0);
    // Asked for by the user (DOCKER_BUILDKIT=1), or needed for secrets: the refusal stands.
    await expect(buildProjectImage(engine, { projectDir: project, tag: 't:9', builder: 'buildkit' })).rejects.toThrow(/BuildKit is not enabled/);
    await expect(buildProjectImage(engine, { projectDir: project, tag: 't:10', secrets: [{ id: 's', data: Buffer.from('v') }] })).rejects.toThrow(
      /BuildKit is not enabled/,
    );
  });

  it('builds on the classic builder when .dockerignore lists the Dockerfile or itself (BuildKit fed a tar would copy them in)', async () => {
    const listed = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-build-listed-'));
    try {
      await fs.writeFile(path.join(listed, 'Dockerfile'), 'FROM base\nCOPY . .\n');
      const engine = new FakeEngine();
      engine.defaultBuilder = 'buildkit';
      engine.buildMessages = [{ aux: { ID: 'sha256:z' } }];
      for (const [ignored, builder] of [
        ['*.md\n', 'buildkit'],
        ['Dockerfile\n', 'classic'],
        ['.dockerignore\n', 'classic'],
      ] as const) {
        await fs.writeFile(path.join(listed, '.dockerignore'), ignored);
        await buildProjectImage(engine, { projectDir: listed, tag: 't:11' });
        expect(engine.builders.at(-1), ignored).toBe(builder);
      }
      // Secrets need BuildKit whatever the .dockerignore says.
      await buildProjectImage(engine, { projectDir: listed, tag: 't:12', secrets: [{ id: 's', data: Buffer.from('v') }] });
      expect(engine.builders.at(-1)).toBe('buildkit');
    } finally {
      await fs.rm(listed, { recursive: true, force: true });
    }
  });

  it('names steps past the Dockerfile count (BuildKit numbers ONBUILD steps on) without a total', () => {
    expect(stepName({ index: 2, total: 5 })).toBe('Step 2/5');
    expect(stepName({ index: 6, total: 1 })).toBe('Step 6');
    expect(new ImageBuildError('exit code: 1', { index: 6, total: 1, instruction: 'COPY . .' }, []).nextStep).toContain('Step 6 (COPY . .) failed');
  });

  it('turns an abort into the interruption it carries', async () => {
    const engine = new FakeEngine();
    const controller = new AbortController();
    engine.build = async function* (request) {
      yield { stream: 'Step 1/2 : FROM base\n' };
      controller.abort(new InterruptedError('SIGINT'));
      request.context.destroy();
      throw Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
    };
    const error = await buildProjectImage(engine, { projectDir: project, tag: 't:4', signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
  });

  it('refuses before building when the signal is already aborted', async () => {
    const engine = new FakeEngine();
    const controller = new AbortController();
    controller.abort();
    await expect(buildProjectImage(engine, { projectDir: project, tag: 't:5', signal: controller.signal })).rejects.toThrow(InterruptedError);
    expect(engine.calls).toEqual([]);
  });
});

describe('build secrets', () => {
  it.each([
    ['id=pip,src=./secret.txt', { id: 'pip', source: { kind: 'file', path: './secret.txt' } }],
    ['id=pip,source=secret.txt', { id: 'pip', source: { kind: 'file', path: 'secret.txt' } }],
    ['src=config/token.txt', { id: 'token.txt', source: { kind: 'file', path: 'config/token.txt' } }],
    ['id=tok,env=GH_TOKEN', { id: 'tok', source: { kind: 'env', name: 'GH_TOKEN' } }],
    ['type=env,id=GH_TOKEN', { id: 'GH_TOKEN', source: { kind: 'env', name: 'GH_TOKEN' } }],
    ['id=GH_TOKEN', { id: 'GH_TOKEN', source: { kind: 'env', name: 'GH_TOKEN' } }],
  ])('parses %s', (spec, expected) => {
    expect(parseBuildSecretSpec(spec)).toEqual(expected);
  });

  it.each(['', 'pip', 'id=a,color=blue', 'id=a,type=ssh', 'src=,env='])('refuses %j', (spec) => {
    expect(() => parseBuildSecretSpec(spec)).toThrow(UserError);
  });

  it('reads files relative to the project and variables from the given environment', async () => {
    const secrets = await resolveBuildSecrets(['id=f,src=secret.txt', 'id=e,env=TOKEN'], { cwd: project, env: { TOKEN: 'env-secret' } });
    expect(secrets.map((s) => [s.id, s.data.toString()])).toEqual([
      ['f', 'file-secret'],
      ['e', 'env-secret'],
    ]);
  });

  it('names the secret whose value is missing', async () => {
    await expect(resolveBuildSecrets(['id=e,env=MISSING'], { cwd: project, env: {} })).rejects.toThrow(/'e'.*MISSING.*not set/);
    await expect(resolveBuildSecrets(['id=f,src=nope.txt'], { cwd: project, env: {} })).rejects.toThrow(/Cannot read build secret 'f'.*ENOENT/);
  });
});
