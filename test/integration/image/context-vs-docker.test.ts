/**
 * Our in-memory `.dockerignore` filtering against the Docker CLI's own: the same project built both ways with
 * `COPY . /ctx/` must give images with the same files.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProjectImage } from '../../../src/image/build.js';
import { createDockerEngine } from '../../../src/image/engine.js';
import { dockerignoreCases, writeCaseProject } from '../../unit/image/dockerignore-cases.js';
import { docker, DOCKER_SOCKET, listImageFiles, removeImages, uniqueName } from './docker.js';

const engine = createDockerEngine({ socketPath: DOCKER_SOCKET });
const images: string[] = [];
let root: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-context-docker-'));
});
afterAll(async () => {
  removeImages(...images);
  await fs.rm(root, { recursive: true, force: true });
});

describe('build context matches what `docker build` sends', () => {
  const comparable = dockerignoreCases.filter((c) => c.comparable !== false);

  it.each(comparable)('$name', async (testCase) => {
    const dir = path.join(root, testCase.name.replace(/[^a-z0-9]+/gi, '-'));
    await fs.mkdir(dir, { recursive: true });
    await writeCaseProject(dir, testCase);
    const dockerfile = testCase.dockerfile ?? 'Dockerfile';

    const theirs = `${uniqueName('ctx-docker')}:latest`;
    const ours = `${uniqueName('ctx-astro')}:latest`;
    images.push(theirs, ours);
    docker(['build', '-q', '-f', path.join(dir, dockerfile), '-t', theirs, dir]);
    await buildProjectImage(engine, { projectDir: dir, tag: ours, dockerfile });

    const theirFiles = listImageFiles(theirs, 'ctx/');
    expect(theirFiles.length).toBeGreaterThan(0);
    expect(listImageFiles(ours, 'ctx/')).toEqual(theirFiles);
  });

  it('leaves dags/ out of the image when DAG-only deploys are on, exactly as a .dockerignore entry would', async () => {
    const testCase = dockerignoreCases.find((c) => c.name === 'DAG-only deploys leave dags/ out')!;
    const dir = path.join(root, 'dag-only');
    await fs.mkdir(dir, { recursive: true });
    await writeCaseProject(dir, testCase);
    // What Astronomer's CLI does by editing .dockerignore, done here on a copy for the Docker CLI only.
    const copy = path.join(root, 'dag-only-copy');
    await fs.cp(dir, copy, { recursive: true });
    await fs.writeFile(path.join(copy, '.dockerignore'), 'dags/\n');

    const theirs = `${uniqueName('ctx-docker')}:latest`;
    const ours = `${uniqueName('ctx-astro')}:latest`;
    images.push(theirs, ours);
    docker(['build', '-q', '-t', theirs, copy]);
    await buildProjectImage(engine, { projectDir: dir, tag: ours, excludeDags: true });

    const ourFiles = listImageFiles(ours, 'ctx/');
    expect(ourFiles.some((f) => f.startsWith('dags'))).toBe(false);
    // The Docker CLI's image also holds its edited .dockerignore; ours sends none because the project has none.
    expect(ourFiles).toEqual(listImageFiles(theirs, 'ctx/').filter((f) => f !== '.dockerignore'));
  });
});
