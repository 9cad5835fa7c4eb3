/**
 * The test bed of the fault suite: the local platform with a fault proxy in front of each of its three doors (the
 * REST API, the registry, the blob store), a home whose config points `local.core` at the API proxy, throwaway copies
 * of the example project, ways to run the CLI (in-process, or built and as a child process for signals), and the
 * judge that decides how a case ended by looking at the platform, the registry, the blob store and the project.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { runCli, type CliRun } from '../helpers/cli.js';
import { provisioned } from '../helpers/provisioned.js';
import { inspectPushedImage } from '../platform/image-check.js';
import { registryService } from '../platform/platform.js';
import { repoRoot, startStack, type Stack } from '../platform/stack.js';
import type { DeployRecord, DeploymentState } from '../platform/state.js';
import { FigureBook, type Outcome } from './figures.js';
import { FaultProxy } from './proxy.js';

export const DAG_ON = 'cldepdagon000000000000000';
export const DAG_OFF = 'cldepdagoff00000000000000';
export const WORKSPACE_TOKEN = 'cltokwsdataplatform000000';

export interface BedOptions {
  healthDelayMs?: number;
}

export interface ProjectOptions {
  /** Random (incompressible) bytes in dags/payload.bin: over 1 MiB the bundle goes up in blocks. */
  dagPayloadBytes?: number;
  /** Random bytes in include/payload.bin: a fresh image layer of about that size. */
  imagePayloadBytes?: number;
  mutate?: (dir: string) => Promise<void>;
}

export interface Project {
  dir: string;
  /** Unique per project; written to dags/marker.txt and include/marker.txt so a deploy's content is recognisable. */
  marker: string;
}

export interface ProjectSnapshot {
  [relativePath: string]: string;
}

export class FaultBed {
  readonly temps: string[] = [];
  readonly figures: FigureBook;
  home = '';

  constructor(
    readonly stack: Stack,
    readonly api: FaultProxy,
    readonly registry: FaultProxy,
    readonly blob: FaultProxy,
    file: string,
  ) {
    this.figures = new FigureBook(file);
  }

  get proxies(): FaultProxy[] {
    return [this.api, this.registry, this.blob];
  }

  token(id = WORKSPACE_TOKEN): string {
    const t = this.stack.tokens.apiTokens.find((x) => x.id === id);
    if (!t) throw new Error(`no seed token ${id}`);
    return t.token;
  }

  async tempDir(prefix: string): Promise<string> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `astro-faults-${prefix}-`));
    this.temps.push(dir);
    return dir;
  }

  async project(options: ProjectOptions = {}): Promise<Project> {
    const dir = await this.tempDir('project');
    await fs.cp(path.join(repoRoot, 'fixtures', 'example-project'), dir, { recursive: true });
    const marker = randomBytes(8).toString('hex');
    await fs.writeFile(path.join(dir, 'dags', 'marker.txt'), marker);
    await fs.writeFile(path.join(dir, 'include', 'marker.txt'), marker);
    if (options.dagPayloadBytes) await fs.writeFile(path.join(dir, 'dags', 'payload.bin'), randomBytes(options.dagPayloadBytes));
    if (options.imagePayloadBytes) await fs.writeFile(path.join(dir, 'include', 'payload.bin'), randomBytes(options.imagePayloadBytes));
    await options.mutate?.(dir);
    return { dir, marker };
  }

  /** The environment of a deploy: the bed's home, a token, the provisioned Python and engine. */
  env(tokenId: string | null = WORKSPACE_TOKEN, extra: Record<string, string> = {}): Record<string, string> {
    return {
      ASTRO_HOME: this.home,
      ...(tokenId ? { ASTRO_API_TOKEN: this.token(tokenId) } : {}),
      ASTRO_PARSE_PYTHON: provisioned().AIRFLOW_PYTHON,
      ASTRO_CACHE_DIR: path.join(this.home, 'cache'),
      DOCKER_HOST: `unix://${provisioned().DOCKER_SOCKET}`,
      ...extra,
    };
  }

  /** `astro deploy …` in this process. */
  deploy(argv: string[], options: { cwd: string; tokenId?: string | null; env?: Record<string, string> }): Promise<CliRun> {
    return runCli(['deploy', ...argv], { cwd: options.cwd, env: this.env(options.tokenId === undefined ? WORKSPACE_TOKEN : options.tokenId, options.env) });
  }

  deployment(id: string): DeploymentState {
    return structuredClone(this.stack.platform.state.get().deployments[id] ?? {});
  }

  deploys(deploymentId: string): DeployRecord[] {
    return structuredClone(this.stack.platform.state.get().deploys.filter((d) => d.deploymentId === deploymentId));
  }

  /** Files of one DAG bundle version, read back from the blob store. */
  async bundleFiles(deploymentId: string, versionId: string): Promise<Map<string, Buffer>> {
    const data = await this.stack.platform.blobStore().readSnapshot(deploymentId, 'dags.tar.gz', versionId, 512 * 1024 * 1024);
    if (!data) throw new Error(`no bundle version ${versionId} for ${deploymentId}`);
    return readTar(await promisify(gunzip)(data));
  }

  /** Whether `<repository>:<tag>` is in the registry (asked directly, not through the proxy): its digest. */
  async imageInRegistry(imageRepository: string, tag: string): Promise<string | undefined> {
    return (await this.pushedImage(imageRepository, tag))?.digest;
  }

  /** Digest and labels of `<repository>:<tag>` in the registry, if it is there. */
  async pushedImage(imageRepository: string, tag: string): Promise<{ digest: string; labels: Record<string, string> } | undefined> {
    const repository = imageRepository.slice(imageRepository.indexOf('/') + 1);
    try {
      const facts = await inspectPushedImage(
        {
          url: this.stack.endpoints.registry.url,
          pullToken: (repo) =>
            this.stack.platform.tokens.registryToken('fault-suite', registryService, [{ type: 'repository', name: repo, actions: ['pull'] }], 60),
        },
        repository,
        tag,
      );
      return { digest: facts.digest, labels: facts.labels };
    } catch {
      return undefined;
    }
  }

  /** Opens a case: takes the "before" picture the verdict compares against. */
  async begin(id: string, group: string, expected: Exclude<Outcome, 'lost'>, scope: { deploymentId: string; project?: Project }): Promise<FaultCase> {
    const c = new FaultCase(this, id, group, expected, scope.deploymentId, scope.project);
    await c.capture();
    this.open.add(c);
    return c;
  }

  readonly open = new Set<FaultCase>();

  /** Cases a test opened but never judged (it threw first) count as lost. */
  closeDangling(): void {
    for (const c of this.open) c.abandon();
    this.open.clear();
  }

  resetFaults(): void {
    for (const p of this.proxies) p.clearRules();
  }

  async stop(): Promise<string> {
    this.closeDangling();
    const { line } = this.figures.flush();
    for (const p of this.proxies) await p.stop();
    await this.stack.stop();
    for (const dir of [this.home, ...this.temps]) if (dir) await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    return line;
  }
}

export async function startFaultBed(file: string, options: BedOptions = {}): Promise<FaultBed> {
  const api = await new FaultProxy({ name: 'api', flavor: 'astro-api' }).start();
  const registry = await new FaultProxy({ name: 'registry', flavor: 'registry' }).start();
  const blob = await new FaultProxy({ name: 'blob', flavor: 'azure-blob' }).start();
  let stack: Stack;
  try {
    stack = await startStack({
      ports: 0,
      healthDelayMs: options.healthDelayMs ?? 200,
      registryPublicHost: registry.hostPort,
      blobPublicUrl: blob.url,
    });
  } catch (error) {
    await Promise.all([api.stop(), registry.stop(), blob.stop()]);
    throw error;
  }
  api.setUpstream(`http://127.0.0.1:${stack.endpoints.platform.port}`);
  registry.setUpstream(stack.endpoints.registry.url);
  blob.setUpstream(`http://127.0.0.1:${stack.endpoints.blob.proxyPort}`);
  const bed = new FaultBed(stack, api, registry, blob, file);
  bed.home = await fs.mkdtemp(path.join(os.tmpdir(), 'astro-faults-home-'));
  await fs.mkdir(path.join(bed.home, '.astro'));
  await fs.writeFile(path.join(bed.home, '.astro', 'config.yaml'), `context: localhost\nlocal:\n  core: ${api.url}\n`);
  return bed;
}

export interface Verdict {
  outcome: Outcome;
  detail: string;
}

export interface SurviveChecks {
  /** Another deploy may have finalized after ours (concurrent deploys): do not require ours to be the current one. */
  allowLaterDeploy?: boolean;
  /** The deploy ran with `--description <this>`: the pushed image must carry it (so it is this project's build). */
  imageDescription?: string;
}

export interface RefuseChecks {
  /** The exit code expected (default: any non-zero). */
  code?: number;
  /** What the message must say to be clear. */
  message: RegExp | RegExp[];
  /** The run had --json: stdout must be exactly one JSON document whose error carries the exit code. */
  json?: boolean;
}

/**
 * What a terminal would act on rather than show: C0 controls but newline and tab, DEL, C1, bidi overrides and
 * isolates. The runs have NO_COLOR and no terminal, so astro itself writes none of them.
 */
const TERMINAL_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** Output problems any refusal can have, whatever it refused: raw control sequences, a broken --json document. */
export function outputProblems(run: { code: number | null; stdout: string; stderr: string }, json: boolean): { problems: string[]; misleading: boolean } {
  const problems: string[] = [];
  let misleading = false;
  const raw = TERMINAL_CONTROL.exec(run.stdout + run.stderr);
  if (raw) {
    problems.push(`raw terminal control character U+${raw[0].charCodeAt(0).toString(16).padStart(4, '0')} in the output`);
    misleading = true;
  }
  if (json) {
    try {
      const doc = JSON.parse(run.stdout) as { error?: { exitCode?: unknown; message?: unknown } };
      if (doc.error?.exitCode !== run.code) problems.push(`the JSON document's error.exitCode is ${String(doc.error?.exitCode)}, the exit was ${run.code}`);
      if (typeof doc.error?.message !== 'string' || doc.error.message === '') problems.push('the JSON document has no error message');
    } catch {
      problems.push(`stdout is not one JSON document: ${JSON.stringify(run.stdout.slice(0, 120))}`);
    }
  }
  return { problems, misleading };
}

/** One fault case: the "before" picture, then a verdict that compares the platform and the project with it. */
export class FaultCase {
  private readonly started = performance.now();
  private beforeDeployIds = new Set<string>();
  private beforeDeployment: DeploymentState = {};
  private beforeProject: ProjectSnapshot | undefined;
  private judged = false;
  private readonly proxyMarks: number[];

  constructor(
    readonly bed: FaultBed,
    readonly id: string,
    readonly group: string,
    readonly expected: Exclude<Outcome, 'lost'>,
    readonly deploymentId: string,
    readonly project: Project | undefined,
  ) {
    this.proxyMarks = bed.proxies.map((p) => p.mark());
  }

  async capture(): Promise<void> {
    this.beforeDeployIds = new Set(this.bed.deploys(this.deploymentId).map((d) => d.id));
    this.beforeDeployment = this.bed.deployment(this.deploymentId);
    if (this.project) this.beforeProject = await snapshotDir(this.project.dir);
  }

  /** Faults the three proxies injected since the case began. */
  proxyFaults(): number {
    return this.bed.proxies.reduce((n, p, i) => n + p.entries(this.proxyMarks[i]).filter((e) => e.fault && e.fault !== 'hold').length, 0);
  }

  newDeploys(): DeployRecord[] {
    return this.bed.deploys(this.deploymentId).filter((d) => !this.beforeDeployIds.has(d.id));
  }

  private finish(verdict: Verdict, faults: number, misleading = false): Verdict {
    this.judged = true;
    this.bed.open.delete(this);
    this.bed.figures.record({
      id: this.id,
      group: this.group,
      faults,
      expected: this.expected,
      outcome: verdict.outcome,
      detail: verdict.detail,
      ...(verdict.outcome === 'lost' && misleading ? { misleading: true } : {}),
      durationMs: Math.round(performance.now() - this.started),
    });
    return verdict;
  }

  abandon(): void {
    if (this.judged) return;
    this.finish({ outcome: 'lost', detail: 'the test stopped before its verdict' }, Math.max(1, this.proxyFaults()));
  }

  private async projectProblems(): Promise<string[]> {
    if (!this.project || !this.beforeProject) return [];
    const after = await snapshotDir(this.project.dir);
    const problems: string[] = [];
    for (const [file, hash] of Object.entries(this.beforeProject)) {
      if (after[file] === undefined) problems.push(`project file removed: ${file}`);
      else if (after[file] !== hash) problems.push(`project file changed: ${file}`);
    }
    for (const file of Object.keys(after)) if (this.beforeProject[file] === undefined) problems.push(`project file added: ${file}`);
    return problems;
  }

  /** Expects a deploy that completed: exit 0, the platform runs exactly this deploy's image and DAGs. */
  async survived(run: CliRun, options: SurviveChecks & { faults?: number } = {}): Promise<Verdict> {
    const faults = options.faults ?? this.proxyFaults();
    const problems: string[] = [];
    if (run.code !== 0) problems.push(`exit ${run.code}: ${lastLines(run.stderr)}`);
    let doc: { deployId?: string; image?: { tag?: string; digest?: string }; dags?: { version?: string } } = {};
    try {
      doc = JSON.parse(run.stdout) as typeof doc;
    } catch {
      if (run.code === 0) problems.push('no JSON document on stdout (run the deploy with --json)');
    }
    if (run.code === 0 && doc.deployId) {
      const record = this.bed.deploys(this.deploymentId).find((d) => d.id === doc.deployId);
      const current = this.bed.deployment(this.deploymentId);
      if (!record) problems.push(`deploy ${doc.deployId} is unknown to the platform`);
      else {
        if (record.status !== 'DEPLOYED') problems.push(`deploy ${record.id} is ${record.status}${record.failureReason ? ` (${record.failureReason})` : ''}`);
        if (!options.allowLaterDeploy && current.rollout?.deployId !== record.id)
          problems.push(`the Deployment rolled out ${current.rollout?.deployId}, not ${record.id}`);
        if (doc.image) {
          if (record.imageDigest !== doc.image.digest) problems.push(`platform has image digest ${record.imageDigest}, the CLI reported ${doc.image.digest}`);
          const inRegistry = await this.bed.pushedImage(record.imageRepository, record.imageTag);
          if (inRegistry?.digest !== record.imageDigest) problems.push(`registry holds ${inRegistry?.digest ?? 'nothing'} for ${record.imageTag}`);
          const description = inRegistry?.labels['io.astronomer.deploy.revision.description'];
          if (options.imageDescription !== undefined && description !== options.imageDescription) {
            problems.push(`the image pushed as ${record.imageTag} was built for "${description}", not for this deploy ("${options.imageDescription}")`);
          }
          if (!options.allowLaterDeploy && current.imageTag !== doc.image.tag) problems.push(`Deployment runs image ${current.imageTag}, not ${doc.image.tag}`);
        }
        if (doc.dags?.version) {
          if (record.dagTarballVersion !== doc.dags.version)
            problems.push(`deploy carries DAG version ${record.dagTarballVersion}, the CLI reported ${doc.dags.version}`);
          if (!options.allowLaterDeploy && current.dagTarballVersion !== doc.dags.version)
            problems.push(`Deployment runs DAGs ${current.dagTarballVersion}, not ${doc.dags.version}`);
          problems.push(...(await this.bundleProblems(doc.dags.version)));
        }
      }
      const strays = this.newDeploys().filter((d) => d.id !== doc.deployId && d.status !== 'INITIALIZED');
      if (strays.length > 0 && !options.allowLaterDeploy) problems.push(`other deploys were finalized: ${strays.map((d) => d.id).join(', ')}`);
    } else if (run.code === 0) {
      problems.push('the CLI reported no deploy id');
    }
    const output = outputProblems(run, false);
    problems.push(...output.problems);
    problems.push(...(await this.projectProblems()));
    return this.finish(
      problems.length === 0 ? { outcome: 'survived', detail: `deploy ${doc.deployId}` } : { outcome: 'lost', detail: problems.join('; ') },
      faults,
      output.misleading,
    );
  }

  /** The bundle stored under `version` must be this project's, whole: its marker and every DAG file, byte for byte. */
  async bundleProblems(version: string): Promise<string[]> {
    if (!this.project) return [];
    const files = await this.bed.bundleFiles(this.deploymentId, version).catch((e: Error) => e);
    if (files instanceof Error) return [`cannot read bundle ${version}: ${files.message}`];
    const problems: string[] = [];
    const dagsDir = path.join(this.project.dir, 'dags');
    for (const entry of await fs.readdir(dagsDir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const rel = path.relative(dagsDir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
      const stored = files.get(`dags/${rel}`);
      if (!stored) problems.push(`bundle ${version} lacks dags/${rel}`);
      else if (!stored.equals(await fs.readFile(path.join(dagsDir, rel)))) problems.push(`bundle ${version} holds a different dags/${rel}`);
    }
    return problems;
  }

  /**
   * Expects a clear refusal: non-zero exit, a message that says what happened, nothing half-deployed (the Deployment
   * still runs what it ran before, new deploys are only INITIALIZED), and no claim about the platform that is untrue.
   */
  async refused(run: CliRun, checks: RefuseChecks & { faults?: number }): Promise<Verdict> {
    const faults = checks.faults ?? Math.max(1, this.proxyFaults());
    const problems: string[] = [];
    const text = run.stderr + run.stdout;
    if (run.code === 0) problems.push('the refusal exited 0');
    if (checks.code !== undefined && run.code !== checks.code) problems.push(`exit ${run.code}, expected ${checks.code}`);
    for (const re of [checks.message].flat()) if (!re.test(text)) problems.push(`message does not say ${re}: ${lastLines(run.stderr)}`);
    if (/Unexpected error|This is a bug in astro/.test(text)) problems.push('reported as a bug, not a clear refusal');
    const output = outputProblems(run, checks.json === true);
    problems.push(...output.problems);
    const claims = this.halfDeployProblems(text);
    problems.push(...claims);
    problems.push(...(await this.projectProblems()));
    const message = firstErrorLine(run.stderr);
    const misleading = output.misleading || claims.some((p) => /^(says|claims) /.test(p));
    return this.finish(problems.length === 0 ? { outcome: 'refused', detail: message } : { outcome: 'lost', detail: problems.join('; ') }, faults, misleading);
  }

  /** The platform is as before (nothing finalized), and what the CLI says reached it is true. */
  halfDeployProblems(text: string): string[] {
    const problems: string[] = [];
    const created = this.newDeploys();
    const finalized = created.filter((d) => d.status !== 'INITIALIZED');
    if (finalized.length > 0)
      problems.push(`deploys were finalized although the deploy was refused: ${finalized.map((d) => `${d.id} ${d.status}`).join(', ')}`);
    const now = this.bed.deployment(this.deploymentId);
    if (now.rollout?.deployId !== this.beforeDeployment.rollout?.deployId) problems.push(`the Deployment rolled out ${now.rollout?.deployId}`);
    if (now.imageTag !== this.beforeDeployment.imageTag) problems.push(`the Deployment's image changed to ${now.imageTag}`);
    if (now.dagTarballVersion !== this.beforeDeployment.dagTarballVersion) problems.push(`the Deployment's DAGs changed to ${now.dagTarballVersion}`);
    if (/Nothing reached the platform/.test(text) && created.length > 0)
      problems.push(`says nothing reached the platform, but deploy ${created[0]!.id} was created`);
    const claimed = /Deploy (\S+) was created but not finalized/.exec(text);
    if (claimed && !created.some((d) => d.id === claimed[1] && d.status === 'INITIALIZED'))
      problems.push(`claims deploy ${claimed[1]} was created and not finalized, which is untrue`);
    return problems;
  }

  /** Expects an interruption: exit 130/143, a message naming the phase and what reached the platform, all of it true. */
  async interrupted(
    run: ChildRun,
    checks: {
      signal: 'SIGINT' | 'SIGTERM';
      phase: string;
      /** `unknown`: the finalize was sent and its fate is the platform's to tell (the deploy may yet be applied). */
      reached: 'nothing' | 'created' | 'unknown' | 'finalized';
      imagePushed?: boolean;
      tempDir: string;
      /** Interrupted while the create request was out: an unused INITIALIZED deploy may exist, and the message says so. */
      creating?: boolean;
    },
  ): Promise<Verdict> {
    const problems: string[] = [];
    const code = checks.signal === 'SIGINT' ? 130 : 143;
    if (run.code !== code) problems.push(`exit ${run.code}${run.signal ? ` (killed by ${run.signal})` : ''}, expected ${code}: ${lastLines(run.stderr)}`);
    const text = run.stderr;
    if (!new RegExp(`interrupted by ${checks.signal} during ${checks.phase}`, 'i').test(text))
      problems.push(`message does not name ${checks.signal} during ${checks.phase}: ${lastLines(text)}`);
    const created = this.newDeploys();
    if (checks.reached === 'nothing' && checks.creating) {
      if (!/The deploy was being created; nothing was pushed, uploaded or finalized/.test(text))
        problems.push('message does not say the deploy was being created');
    } else if (checks.reached === 'nothing') {
      if (created.length > 0) problems.push(`deploy ${created[0]!.id} was created before the interruption`);
      if (!/Nothing reached the platform/.test(text)) problems.push('message does not say that nothing reached the platform');
    }
    if (checks.reached === 'created') {
      const record = created[0];
      if (!record) problems.push('no deploy was created');
      else if (!new RegExp(`Deploy ${record.id} was created but not finalized`).test(text))
        problems.push(`message does not say that deploy ${record.id} was created but not finalized`);
      if (checks.imagePushed !== undefined && record) {
        const pushed = (await this.bed.imageInRegistry(record.imageRepository, record.imageTag)) !== undefined;
        const says = /The image was pushed/.test(text) ? true : /The image was not pushed/.test(text) ? false : undefined;
        if (says === undefined) problems.push('message does not say whether the image was pushed');
        else if (says !== pushed) problems.push(`message says the image was ${says ? '' : 'not '}pushed; the registry ${pushed ? 'has' : 'lacks'} it`);
      }
    }
    if (checks.reached === 'unknown') {
      const record = created[0];
      if (!record) problems.push('no deploy was created');
      else if (
        !new RegExp(
          `Deploy ${record.id} was created and its finalize sent, but whether the platform received it is unknown: check the Deployment before deploying again`,
        ).test(text)
      ) {
        problems.push(`message does not say that the finalize of deploy ${record.id} was sent with an unknown outcome: ${lastLines(text)}`);
      }
      if (/still runs its previous code|Run astro deploy again/.test(text))
        problems.push('message claims the Deployment still runs its previous code, though the finalize was sent');
    } else if (checks.reached === 'finalized') {
      if (!created.some((d) => d.status !== 'INITIALIZED')) problems.push('no deploy was finalized');
      if (!/finalized before the interruption/.test(text)) problems.push('message does not say the deploy was finalized');
    } else {
      problems.push(...this.halfDeployProblems(text));
    }
    problems.push(...(await this.projectProblems()));
    const leftovers = existsSync(checks.tempDir) ? readdirSync(checks.tempDir) : [];
    if (leftovers.length > 0) problems.push(`temp files left: ${leftovers.join(', ')}`);
    const output = outputProblems(run, false);
    problems.push(...output.problems);
    const verdict: Verdict =
      problems.length === 0
        ? { outcome: checks.reached === 'finalized' ? 'survived' : 'refused', detail: firstErrorLine(text) }
        : { outcome: 'lost', detail: problems.join('; ') };
    return this.finish(verdict, 1, output.misleading);
  }
}

export async function snapshotDir(dir: string): Promise<ProjectSnapshot> {
  const out: ProjectSnapshot = {};
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    const rel = path.relative(dir, full);
    if (entry.isSymbolicLink()) out[rel] = `link:${await fs.readlink(full)}`;
    else if (entry.isFile()) {
      // A name that is not UTF-8 cannot be opened by its decoded string (a bad-input case): recorded as such.
      const stat = await fs.stat(full).catch(() => undefined);
      if (!stat) {
        out[rel] = 'undecodable-name';
        continue;
      }
      // Unreadable files (a bad-input case) are compared by size and mode.
      out[rel] = await fs.readFile(full).then(
        (data) => createHash('sha256').update(data).digest('hex'),
        () => `unreadable:${stat.size}:${stat.mode}`,
      );
    } else out[rel] = entry.isDirectory() ? 'dir' : 'other';
  }
  return out;
}

async function readTar(tar: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
      stream.on('end', () => {
        if (header.type === 'file') files.set(header.name, Buffer.concat(chunks));
        next();
      });
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(tar);
  await done;
  return files;
}

function lastLines(text: string, n = 4): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

function firstErrorLine(text: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith('Error:'));
  return (i >= 0 ? lines.slice(i, i + 3) : lines.slice(-3)).join(' ').trim();
}

// ---- the built CLI as a child process, for real signals ---------------------------------------------------------

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ChildDeploy {
  child: ChildProcess;
  /** Resolves when stderr has matched `re`. */
  stderrMatches(re: RegExp): Promise<void>;
  done: Promise<ChildRun>;
}

const builtCli = path.join(repoRoot, '.state', 'faults', 'cli');

/**
 * Builds the CLI once into `.state/faults/cli` (dist + bin + package.json, with links to node_modules and python), a
 * private copy so a concurrent `npm run build` of the shared dist/ cannot change it under a running test.
 */
export async function buildCli(): Promise<string> {
  const entry = path.join(builtCli, 'bin', 'astro.js');
  // Up to date when built after the last change of any source: the test files share one build.
  const builtAt = await fs.stat(path.join(builtCli, 'dist', 'bundle', 'main.js')).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  if (builtAt > 0 && existsSync(entry) && (await newestSourceChange()) < builtAt) return entry;
  await fs.rm(path.join(builtCli, 'dist'), { recursive: true, force: true });
  mkdirSync(path.join(builtCli, 'bin'), { recursive: true });
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [tsc, '-p', path.join(repoRoot, 'tsconfig.json'), '--outDir', path.join(builtCli, 'dist')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', () => {
      // Type errors elsewhere in the tree (other work in progress) still emit JavaScript; only a missing entry fails.
      if (existsSync(path.join(builtCli, 'dist', 'cli', 'main.js'))) resolve();
      else reject(new Error(`tsc produced no CLI:\n${output}`));
    });
  });
  // bin/astro.js runs the bundle (scripts/bundle.mjs), as the published package does.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'scripts', 'bundle.mjs'), '--outdir', path.join(builtCli, 'dist', 'bundle')], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bundling the CLI failed:\n${output}`))));
  });
  // bin/package.json too: it makes bin/astro.js CommonJS under a package.json that says ES modules.
  await fs.cp(path.join(repoRoot, 'bin'), path.join(builtCli, 'bin'), { recursive: true });
  await fs.copyFile(path.join(repoRoot, 'package.json'), path.join(builtCli, 'package.json'));
  for (const link of ['node_modules', 'python']) {
    const at = path.join(builtCli, link);
    if (!existsSync(at)) await fs.symlink(path.join(repoRoot, link), at);
  }
  return entry;
}

async function newestSourceChange(): Promise<number> {
  let newest = 0;
  const files = [
    path.join(repoRoot, 'bin', 'astro.js'),
    path.join(repoRoot, 'bin', 'package.json'),
    path.join(repoRoot, 'package.json'),
    path.join(repoRoot, 'tsconfig.json'),
    path.join(repoRoot, 'scripts', 'bundle.mjs'),
  ];
  for (const entry of await fs.readdir(path.join(repoRoot, 'src'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.push(path.join(entry.parentPath, entry.name));
  }
  for (const file of files) newest = Math.max(newest, (await fs.stat(file)).mtimeMs);
  return newest;
}

export function spawnDeploy(bin: string, argv: string[], options: { cwd: string; env: Record<string, string>; uid?: number; gid?: number }): ChildDeploy {
  const child = spawn(process.execPath, [bin, 'deploy', ...argv], {
    cwd: options.cwd,
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}),
    env: { PATH: process.env.PATH, HOME: '/nonexistent-home', NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers: { re: RegExp; resolve: () => void }[] = [];
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    for (let i = watchers.length - 1; i >= 0; i--) {
      if (watchers[i]!.re.test(stderr)) {
        watchers[i]!.resolve();
        watchers.splice(i, 1);
      }
    }
  });
  const done = new Promise<ChildRun>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    done,
    stderrMatches: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(stderr)) return resolve();
        watchers.push({ re, resolve });
        void done.then(() => reject(new Error(`the CLI exited before its output matched ${re}:\n${stderr}`)));
      }),
  };
}
