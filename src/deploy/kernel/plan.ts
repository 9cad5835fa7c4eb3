/**
 * The deploy plan: what the Deployment runs now against what this project would ship, decided before anything is
 * built or sent. Two parts are compared on their own — the image (its inputs) and the DAG bundle (its contents) —
 * by the content digests an earlier run recorded with its deploy, else by the files git says changed since the
 * deployed commit, else not at all (then the part counts as changed: a plan never skips what it cannot vouch for).
 *
 * The digests travel in the deploy's description as one short trailer line, because the description is what every
 * Astro API version keeps and returns with a deploy: a fresh clone on a fresh machine reads them back from there.
 */
import type { DeployType } from '../../platform/astro/schemas.js';

/** The trailer's key; one line at the end of the description. */
export const CONTENT_TRAILER = 'astro-content:';
/** Hex digits kept per digest: 128 bits, enough to tell contents apart, short enough to read. */
const KEPT_HEX = 32;
/** Astro keeps descriptions up to 1000 characters. */
const MAX_DESCRIPTION = 1000;

/** Digests recorded with a deploy: of the image inputs it shipped, of the DAG bundle it shipped. */
export interface RecordedContent {
  image?: string;
  dags?: string;
}

const HEX = /^(?:sha256:)?([0-9a-f]{16,64})$/;

function kept(digest: string): string {
  const hex = HEX.exec(digest)?.[1];
  if (!hex) throw new Error(`not a sha256 digest: ${digest}`);
  return hex.slice(0, KEPT_HEX);
}

/** The trailer line for what a deploy ships, e.g. `astro-content: image=3f… dags=9a…`; '' when it ships neither. */
export function contentTrailer(content: RecordedContent): string {
  const parts = [content.image ? `image=${kept(content.image)}` : '', content.dags ? `dags=${kept(content.dags)}` : ''].filter(Boolean);
  return parts.length > 0 ? `${CONTENT_TRAILER} ${parts.join(' ')}` : '';
}

/** The description with the trailer as its last line, the user's text shortened (never the trailer) to fit. */
export function describeWithContent(description: string, content: RecordedContent): string {
  const trailer = contentTrailer(content);
  if (!trailer) return description;
  const text = description.trimEnd();
  if (!text) return trailer;
  const room = MAX_DESCRIPTION - trailer.length - 2;
  return `${text.length > room ? `${text.slice(0, room - 1)}…` : text}\n\n${trailer}`;
}

/** The digests a description's trailer recorded; undefined when it has none (another tool, an edited description). */
export function readContentTrailer(description: string | undefined): RecordedContent | undefined {
  if (!description) return undefined;
  const line = description
    .split('\n')
    .map((l) => l.trim())
    .reverse()
    .find((l) => l.startsWith(CONTENT_TRAILER));
  if (!line) return undefined;
  const out: RecordedContent = {};
  for (const field of line.slice(CONTENT_TRAILER.length).trim().split(/\s+/)) {
    const match = /^(image|dags)=([0-9a-f]{16,64})$/.exec(field);
    if (match) out[match[1] as 'image' | 'dags'] = match[2]!;
  }
  return out.image || out.dags ? out : undefined;
}

/** The description without our trailer: what the user wrote. */
export function stripContentTrailer(description: string): string {
  return description
    .split('\n')
    .filter((l) => !l.trim().startsWith(CONTENT_TRAILER))
    .join('\n')
    .trimEnd();
}

/** What the Deployment runs of one part (image or DAGs), as far as the platform tells. */
export interface DeployedPart {
  deployId: string;
  at?: string;
  /** The digest recorded with that deploy (shortened as the trailer keeps it). */
  recorded?: string;
  /** The git commit recorded with that deploy. */
  commit?: string;
  /** For the image: the manifest digest the registry serves for the deploy's tag, when it was read. */
  imageDigest?: string;
  /** Where `recorded` came from: the deploy's description, or the pushed image's label. */
  recordedIn?: 'description' | 'image label';
}

export type PartState = 'unchanged' | 'changed' | 'unknown';

export interface PartComparison {
  state: PartState;
  /** How it was decided: recorded content digests, git history, or neither. */
  basis: 'content' | 'git' | 'none';
  why: string;
  /** For `git`: the changed files that count for this part (at most a few, for the plan). */
  files?: string[];
}

/**
 * One part compared. `changedFiles` are the project files git says differ from the deployed commit (undefined when
 * git cannot tell); `counts` says which of them belong to this part.
 */
export function comparePart(input: {
  what: 'image' | 'DAGs';
  local: string | undefined;
  deployed: DeployedPart | undefined;
  changedFiles?: string[];
  counts: (file: string) => boolean;
}): PartComparison {
  const { what, local, deployed } = input;
  if (!deployed) return { state: 'unknown', basis: 'none', why: `the Deployment runs no ${what} this CLI can trace to a deploy` };
  if (local && deployed.recorded) {
    const same = kept(local) === deployed.recorded.slice(0, KEPT_HEX) && deployed.recorded.length >= KEPT_HEX;
    return same
      ? { state: 'unchanged', basis: 'content', why: `${what} content digest ${deployed.recorded.slice(0, 12)} matches deploy ${deployed.deployId}` }
      : {
          state: 'changed',
          basis: 'content',
          why: `${what} content digest ${kept(local).slice(0, 12)} differs from ${deployed.recorded.slice(0, 12)} (deploy ${deployed.deployId})`,
        };
  }
  if (deployed.commit && input.changedFiles) {
    const files = input.changedFiles.filter(input.counts);
    return files.length === 0
      ? { state: 'unchanged', basis: 'git', why: `no ${what} file changed since commit ${deployed.commit.slice(0, 7)} (deploy ${deployed.deployId})` }
      : {
          state: 'changed',
          basis: 'git',
          why: `${files.length} ${what} file(s) changed since commit ${deployed.commit.slice(0, 7)}`,
          files: files.slice(0, 10),
        };
  }
  return { state: 'unknown', basis: 'none', why: `deploy ${deployed.deployId} recorded neither a content digest nor a commit this clone knows` };
}

/** Files that go into the DAG bundle, relative to the project. */
export function isDagFile(file: string, dagsDir = 'dags'): boolean {
  const prefix = dagsDir.replace(/\/+$/, '');
  return file === prefix || file.startsWith(`${prefix}/`);
}

export interface PlanDecision {
  action: 'noop' | 'deploy';
  type: DeployType;
  /** The type was chosen by the plan (DAG-only because only DAGs changed), not by --dags / --image. */
  automatic: boolean;
  why: string;
}

/**
 * The decision. Explicit --dags / --image always deploy what they name. Otherwise: nothing changed → no deploy
 * (unless --force); only the DAG bundle changed on a Deployment with DAG deploys → DAG_ONLY; anything else → the
 * full deploy.
 */
export function decide(input: {
  mode: 'full' | 'dags' | 'image';
  dagDeploy: boolean;
  force: boolean;
  image: PartComparison;
  dags?: PartComparison;
}): PlanDecision {
  const { mode, dagDeploy, force, image, dags } = input;
  if (mode === 'dags') return { action: 'deploy', type: 'DAG_ONLY', automatic: false, why: '--dags deploys the DAGs only' };
  if (mode === 'image') return { action: 'deploy', type: dagDeploy ? 'IMAGE_ONLY' : 'IMAGE_AND_DAG', automatic: false, why: '--image deploys the image only' };
  const dagsState = dagDeploy ? (dags?.state ?? 'unknown') : 'unchanged';
  if (image.state === 'unchanged' && dagsState === 'unchanged') {
    return force
      ? { action: 'deploy', type: 'IMAGE_AND_DAG', automatic: false, why: 'nothing changed, but --force deploys anyway' }
      : { action: 'noop', type: 'IMAGE_AND_DAG', automatic: false, why: 'nothing changed since the deploy the Deployment runs' };
  }
  if (dagDeploy && image.state === 'unchanged') {
    return { action: 'deploy', type: 'DAG_ONLY', automatic: true, why: 'only the DAGs changed' };
  }
  return { action: 'deploy', type: 'IMAGE_AND_DAG', automatic: false, why: image.state === 'unknown' ? image.why : 'the image inputs changed' };
}
