/**
 * Git metadata for CreateDeploy, read with the git CLI. Metadata is skipped (with a note) when the tree is
 * dirty, when there is no origin remote, or when the project is not in a repository.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { GitMetadata } from '../../platform/astro/schemas.js';

const promisified = () => promisify(execFile);
/** execFile as a promise, made on first use: node:child_process loads only once git is asked something. */
let run: ReturnType<typeof promisified> | undefined;

/** git with the user's environment (config, HOME), never prompting, in the C locale. */
async function git(cwd: string, args: string[], hostEnv: Readonly<Record<string, string | undefined>>): Promise<string | undefined> {
  try {
    const { stdout } = await (run ??= promisified())('git', args, {
      cwd,
      timeout: 10_000,
      maxBuffer: 4 * 1024 * 1024,
      env: { ...hostEnv, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' },
    });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

/**
 * Whether git could see a repository here without being asked: a `.git` in the folder or one above it. Starting git
 * costs a process (5-10 ms each, and a deploy asks several questions); a project that no `.git` above it marks is
 * not in a repository, and git is not started for it. Where the environment points git elsewhere (GIT_DIR,
 * GIT_WORK_TREE), only git can tell.
 */
export function mayBeInRepository(dir: string, hostEnv: Readonly<Record<string, string | undefined>>): boolean {
  if (hostEnv.GIT_DIR || hostEnv.GIT_WORK_TREE) return true;
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    // A file (worktrees, submodules) or a folder; anything there that we cannot see through counts as one.
    try {
      fs.lstatSync(path.join(current, '.git'));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return true;
    }
    if (path.dirname(current) === current) return false;
  }
}

export interface GitInfo {
  metadata?: GitMetadata;
  /** First line of the HEAD commit message, at most 72 characters. */
  headSubject?: string;
  /** Why metadata was not collected, for a note on stderr. */
  skippedBecause?: string;
}

const GITHUB_REMOTE = /github\.com[:/]([^/]+)\/(.+?)(?:\.git)?\/?$/;

export async function readGitInfo(projectDir: string, hostEnv: Readonly<Record<string, string | undefined>>): Promise<GitInfo> {
  const top = mayBeInRepository(projectDir, hostEnv) ? await git(projectDir, ['rev-parse', '--show-toplevel'], hostEnv) : undefined;
  if (!top) return { skippedBecause: 'Skipping Git metadata: the project is not in a git repository' };
  // The rest at once (each is its own process; one after the other they took 5-10 ms apiece), judged in order.
  const [head, status, remote, branch] = await Promise.all([
    git(projectDir, ['log', '-1', '--format=%H%n%an%n%s'], hostEnv),
    git(projectDir, ['status', '--porcelain', '--untracked-files=no'], hostEnv),
    git(projectDir, ['remote', 'get-url', 'origin'], hostEnv),
    git(projectDir, ['rev-parse', '--abbrev-ref', 'HEAD'], hostEnv),
  ]);
  const [sha, authorName, subjectLine] = head?.split('\n') ?? [];
  if (!sha) return { skippedBecause: 'Skipping Git metadata: the repository has no commits yet' };
  const subject = (subjectLine ?? '').slice(0, 72);
  if (status === undefined || status !== '') {
    return { headSubject: subject, skippedBecause: 'Local repository has uncommitted changes, skipping Git metadata retrieval' };
  }
  if (!remote) return { headSubject: subject, skippedBecause: 'Skipping Git metadata: the repository has no origin remote' };
  const relative = path.relative(top, path.resolve(projectDir)).split(path.sep).join('/');
  const base = {
    commitSha: sha,
    ...(branch && branch !== 'HEAD' ? { branch } : {}),
    ...(authorName ? { authorName } : {}),
    ...(relative ? { path: relative } : {}),
  };
  const github = GITHUB_REMOTE.exec(remote);
  const metadata: GitMetadata = github
    ? { provider: 'GITHUB', ...base, account: github[1]!, repo: github[2]!, commitUrl: `https://github.com/${github[1]}/${github[2]}/commit/${sha}` }
    : { provider: 'GENERIC', ...base, remoteUrl: remote };
  return { metadata, headSubject: subject };
}

/**
 * Tracked files differ from HEAD (staged or not), as `git diff --quiet HEAD` tells; a repository without commits
 * counts as changed. Outside a repository there is nothing to commit.
 */
export async function hasUncommittedChanges(projectDir: string, hostEnv: Readonly<Record<string, string | undefined>>): Promise<boolean> {
  if (!mayBeInRepository(projectDir, hostEnv) || (await git(projectDir, ['rev-parse', '--is-inside-work-tree'], hostEnv)) !== 'true') return false;
  // Only the project's own files count: a deploy of one folder of a larger repository is not held up by the rest.
  return (await git(projectDir, ['diff', '--quiet', 'HEAD', '--', '.'], hostEnv)) === undefined;
}

/**
 * The project's files that differ from `commit` — committed since, changed in the work tree, or untracked and not
 * ignored — relative to the project folder. Undefined when git cannot tell (no repository, or a shallow clone
 * without that commit): the plan then has no git history to go by.
 */
export async function changedFilesSince(
  projectDir: string,
  commit: string,
  hostEnv: Readonly<Record<string, string | undefined>>,
): Promise<string[] | undefined> {
  if (!/^[0-9a-f]{7,64}$/i.test(commit) || !mayBeInRepository(projectDir, hostEnv)) return undefined;
  if ((await git(projectDir, ['rev-parse', '--is-inside-work-tree'], hostEnv)) !== 'true') return undefined;
  if ((await git(projectDir, ['cat-file', '-e', `${commit}^{commit}`], hostEnv)) === undefined) return undefined;
  const changed = await git(projectDir, ['diff', '--name-only', '--relative', '--no-renames', commit, '--', '.'], hostEnv);
  const untracked = await git(projectDir, ['ls-files', '--others', '--exclude-standard', '--', '.'], hostEnv);
  if (changed === undefined || untracked === undefined) return undefined;
  return [...new Set([...changed.split('\n'), ...untracked.split('\n')].filter((f) => f !== ''))].sort();
}
