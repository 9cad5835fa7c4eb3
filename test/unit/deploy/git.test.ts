import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changedFilesSince, hasUncommittedChanges, mayBeInRepository, readGitInfo } from '../../../src/deploy/kernel/git.js';

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

describe('git is started only where a repository may be', () => {
  /** A `git` first on PATH that logs each start, then runs the real one. */
  async function countingGit(): Promise<{ env: Record<string, string | undefined>; starts: () => Promise<string[]> }> {
    const bin = path.join(dir, 'bin');
    const log = path.join(dir, 'git-starts.log');
    const real = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    await fs.mkdir(bin);
    await fs.writeFile(path.join(bin, 'git'), `#!/bin/sh\necho "$*" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    return {
      env: { ...hostEnv, PATH: `${bin}:${process.env.PATH}` },
      starts: () =>
        fs.readFile(log, 'utf8').then(
          (t) => t.split('\n').filter(Boolean),
          () => [],
        ),
    };
  }

  it('no .git above the project: not in a repository, and git is never started', async () => {
    const project = path.join(dir, 'project');
    await fs.mkdir(project);
    const { env, starts } = await countingGit();
    expect(mayBeInRepository(project, env)).toBe(false);
    expect(await readGitInfo(project, env)).toEqual({ skippedBecause: 'Skipping Git metadata: the project is not in a git repository' });
    expect(await hasUncommittedChanges(project, env)).toBe(false);
    expect(await changedFilesSince(project, 'a'.repeat(40), env)).toBeUndefined();
    expect(await starts()).toEqual([]);
  });

  it('a .git folder or file above the project, or GIT_DIR set: git is asked', async () => {
    const project = await repoWithProject();
    const { env, starts } = await countingGit();
    expect(mayBeInRepository(path.join(project, 'dags'), env)).toBe(true);
    expect((await readGitInfo(project, env)).headSubject).toBe('Add the first DAG');
    expect((await starts()).length).toBeGreaterThan(0);

    // A worktree's .git is a file.
    const elsewhere = path.join(dir, 'elsewhere');
    await fs.mkdir(elsewhere);
    await fs.writeFile(path.join(elsewhere, '.git'), 'gitdir: /nowhere\n');
    expect(mayBeInRepository(elsewhere, env)).toBe(true);

    // The environment points git at a repository the folder does not hold: only git can tell, and it says so.
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-git-outside-'));
    try {
      const viaEnv = { ...env, GIT_DIR: path.join(dir, '.git'), GIT_WORK_TREE: dir };
      expect(mayBeInRepository(outside, viaEnv)).toBe(true);
      expect((await readGitInfo(outside, viaEnv)).skippedBecause).not.toBe('Skipping Git metadata: the project is not in a git repository');
    } finally {
      await fs.rm(outside, { recursive: true, force: true });
    }
  });
});
