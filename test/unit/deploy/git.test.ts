import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasUncommittedChanges, readGitInfo } from '../../../src/deploy/kernel/git.js';

let dir: string;
const hostEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Ada Lovelace',
  GIT_AUTHOR_EMAIL: 'ada@example.com',
  GIT_COMMITTER_NAME: 'Ada Lovelace',
  GIT_COMMITTER_EMAIL: 'ada@example.com',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
};
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env: hostEnv, stdio: 'ignore' });

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-git-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function repoWithProject(): Promise<string> {
  git(dir, 'init', '-q', '-b', 'main');
  const project = path.join(dir, 'airflow');
  await fs.mkdir(path.join(project, 'dags'), { recursive: true });
  await fs.writeFile(path.join(project, 'dags', 'a.py'), 'x = 1\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'Add the first DAG');
  return project;
}

describe('readGitInfo', () => {
  it('outside a repository: skipped, with why', async () => {
    expect(await readGitInfo(dir, hostEnv)).toEqual({ skippedBecause: 'Skipping Git metadata: the project is not in a git repository' });
  });

  it('a repository without commits: skipped, with why', async () => {
    git(dir, 'init', '-q');
    expect(await readGitInfo(dir, hostEnv)).toEqual({ skippedBecause: 'Skipping Git metadata: the repository has no commits yet' });
  });

  it('a GitHub origin: the commit, branch, author, the project folder and the commit URL', async () => {
    const project = await repoWithProject();
    git(dir, 'remote', 'add', 'origin', 'git@github.com:stellar/pipelines.git');
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    expect(await readGitInfo(project, hostEnv)).toEqual({
      headSubject: 'Add the first DAG',
      metadata: {
        provider: 'GITHUB',
        commitSha: sha,
        branch: 'main',
        authorName: 'Ada Lovelace',
        path: 'airflow',
        account: 'stellar',
        repo: 'pipelines',
        commitUrl: `https://github.com/stellar/pipelines/commit/${sha}`,
      },
    });
  });

  it('another origin is GENERIC; no origin, a dirty tree or a detached HEAD say so or leave the branch out', async () => {
    const project = await repoWithProject();
    expect(await readGitInfo(project, hostEnv)).toEqual({
      headSubject: 'Add the first DAG',
      skippedBecause: 'Skipping Git metadata: the repository has no origin remote',
    });
    git(dir, 'remote', 'add', 'origin', 'https://git.example.com/pipelines.git');
    const generic = await readGitInfo(project, hostEnv);
    expect(generic.metadata).toMatchObject({ provider: 'GENERIC', remoteUrl: 'https://git.example.com/pipelines.git', branch: 'main' });
    git(dir, 'checkout', '-q', '--detach');
    expect((await readGitInfo(project, hostEnv)).metadata).not.toHaveProperty('branch');
    await fs.appendFile(path.join(project, 'dags', 'a.py'), 'y = 2\n');
    expect(await readGitInfo(project, hostEnv)).toEqual({
      headSubject: 'Add the first DAG',
      skippedBecause: 'Local repository has uncommitted changes, skipping Git metadata retrieval',
    });
    expect(await hasUncommittedChanges(project, hostEnv)).toBe(true);
  });
});
