/**
 * Astro Runtime image tags (seed 003, reference 7.6): the Runtime version, then optional segments in a fixed order.
 *
 *   Airflow 3: <X.Y-Z>[-ubi9][-python-3.N][-base]          floating: <X.Y> and <X.Y>-base
 *   Airflow 2: <X.Y.Z>[-ubi9][-python-3.N][-slim][-base]
 *
 * Decision on `-slim` (Airflow 2): the Runtime docs put it after the Python segment (`13.2.0-python-3.11-slim`),
 * and that is the spelling we write in corrections. Astronomer's own CLI examples put it before
 * (`13.7.0-slim-python-3.12`), so users copying them will have that form; both orders are accepted and a tag keeps
 * the order it was written in. Everything else is strict where the docs are unambiguous: `-ubi9` right after the
 * version, `-base` last, `-slim` only for Airflow 2, floating tags only as `X.Y` and `X.Y-base`. Every rejected tag
 * comes with the corrected tag (or, where a number must be chosen, a template such as `3.1-<patch>`).
 *
 * Availability rules from the docs: Python-version images from Runtime 9, slim images from Runtime 11, RHEL UBI 9
 * images from 11.13.0 in the 11.x series and from 12.3.0 on (experimental before 12.5.0), and all Airflow 3
 * versions. With an updates feed at hand, corrections use real version numbers and the Python versions a release
 * ships.
 */
import { UserError } from '../../errors.js';
import { findRuntimeRelease, latestRuntimeVersion, resolveFloatingVersion, type RuntimeFeed, type RuntimeGeneration } from './feed.js';
import { formatImageReference, type ImageReference } from './reference.js';
import { compareRuntimeVersions, parseRuntimeVersion } from './version.js';

export const AIRFLOW3_RUNTIME_REPOSITORY = 'astrocrpublic.azurecr.io/runtime';
export const AIRFLOW2_RUNTIME_REPOSITORY = 'quay.io/astronomer/astro-runtime';
export type RuntimeRepository = typeof AIRFLOW3_RUNTIME_REPOSITORY | typeof AIRFLOW2_RUNTIME_REPOSITORY;

/** Generations each repository publishes: the new registry carries Airflow 2 tags as well. */
export const RUNTIME_REPOSITORY_GENERATIONS: Readonly<Record<RuntimeRepository, readonly RuntimeGeneration[]>> = {
  [AIRFLOW3_RUNTIME_REPOSITORY]: ['airflow3', 'airflow2'],
  [AIRFLOW2_RUNTIME_REPOSITORY]: ['airflow2'],
};

export type RuntimeOs = 'debian' | 'ubi9';

export interface RuntimeTagParts {
  /** The Runtime version: pinned (`3.1-8`, `12.5.0`, `3.1-1-rc1`) or, for a floating tag, `X.Y`. */
  version: string;
  generation: RuntimeGeneration;
  floating: boolean;
  os: RuntimeOs;
  /** `3.12` for a `-python-3.12` image; undefined for the default Python. */
  python?: string;
  /** Airflow 2 only. */
  slim: boolean;
  base: boolean;
  /** Written as `-slim-python-3.N` rather than the documented `-python-3.N-slim`. */
  slimBeforePython?: boolean;
}

export interface RuntimeTag extends RuntimeTagParts {
  /** The tag as written. */
  tag: string;
}

/** Canonical spelling of a tag; round-trips every tag {@link analyzeRuntimeTag} accepts. */
export function formatRuntimeTag(parts: RuntimeTagParts): string {
  const python = parts.python !== undefined ? `-python-${parts.python}` : '';
  const slim = parts.slim ? '-slim' : '';
  return [parts.version, parts.os === 'ubi9' ? '-ubi9' : '', parts.slimBeforePython ? slim + python : python + slim, parts.base ? '-base' : ''].join('');
}

export interface RuntimeTagContext {
  /** Makes corrections concrete (real patch numbers) and enables the per-release Python check. */
  feed?: RuntimeFeed;
  /** Generation the repository implies when the tag alone cannot tell (used to pick a "latest" correction). */
  generationHint?: RuntimeGeneration;
}

export interface RuntimeTagAnalysis {
  /** The parsed tag when it is valid. */
  tag?: RuntimeTag;
  /** What is wrong, one sentence each; empty when valid. */
  problems: string[];
  /** The corrected tag when every problem has a fix. */
  corrected?: string;
  /** The corrected tag contains a `<placeholder>` the user has to fill in. */
  correctedIsTemplate: boolean;
  /** The generation the tag belongs to, when it can be told even from an invalid tag. */
  generation?: RuntimeGeneration;
}

type SegmentKind = 'prerelease' | 'os' | 'python' | 'slim' | 'base';

interface Segment {
  kind: SegmentKind;
  value?: string;
}

const segmentRank: Record<SegmentKind, number> = { prerelease: 0, os: 1, python: 2, slim: 2, base: 3 };
const prereleasePattern = /^(?:rc|alpha|beta|dev)\.?\d*$/;
const patchPlaceholder = '<patch>';

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((d[i - 1] as number[])[j]! + 1, (d[i] as number[])[j - 1]! + 1, (d[i - 1] as number[])[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, (d[i - 2] as number[])[j - 2]! + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return (d[a.length] as number[])[b.length]!;
}

function closestWord(word: string, candidates: readonly string[], maxDistance: (candidate: string) => number): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance <= maxDistance(candidate) && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

function stripLeadingZeros(digits: string): string {
  return digits.replace(/^0+(?=\d)/, '');
}

/** Reads the version after `-python-`: `3.12`, or fixable spellings `3.12.4` and `312`. */
function readPythonVersion(token: string): { version: string; problem?: string } | { invalid: string } | undefined {
  let match = /^(\d+)\.(\d+)$/.exec(token);
  if (match) {
    if (match[1] !== '3') return { invalid: `Astro Runtime images are built for Python 3, not Python ${token}` };
    return { version: `3.${stripLeadingZeros(match[2] as string)}` };
  }
  match = /^(\d+)\.(\d+)\.\d+$/.exec(token);
  if (match && match[1] === '3')
    return { version: `3.${match[2]}`, problem: `the Python segment names a minor version only: -python-3.${match[2]}, not -python-${token}` };
  match = /^3(\d{1,2})$/.exec(token);
  if (match) return { version: `3.${match[1]}`, problem: `write the Python version with a dot: -python-3.${match[1]}` };
  return undefined;
}

/** RHEL UBI 9 images: 11.13.0 and later in 11.x, 12.3.0 and later from 12.x on. */
function ubi9Published(version: string): boolean {
  return (compareRuntimeVersions(version, '11.13.0') >= 0 && compareRuntimeVersions(version, '12.0.0') < 0) || compareRuntimeVersions(version, '12.3.0') >= 0;
}

function segmentName(segment: Segment): string {
  switch (segment.kind) {
    case 'python':
      return `-python-${segment.value ?? 'X.Y'}`;
    case 'os':
      return '-ubi9';
    case 'prerelease':
      return `-${segment.value ?? 'rc'}`;
    default:
      return `-${segment.kind}`;
  }
}

function grammarFor(generation: RuntimeGeneration): string {
  return generation === 'airflow3' ? '<version>[-ubi9][-python-3.N][-base]' : '<version>[-ubi9][-python-3.N][-slim][-base]';
}

/**
 * Checks a Runtime tag against the grammar without throwing. Problems are collected all at once so the corrected
 * tag fixes every one of them.
 */
export function analyzeRuntimeTag(tag: string, context: RuntimeTagContext = {}): RuntimeTagAnalysis {
  const { feed } = context;
  const problems: string[] = [];
  let fixable = true;
  let template = false;
  let text = tag;

  if (/^[vV]\d/.test(text)) {
    problems.push(`Runtime tags start with the version number, without a leading '${text[0] as string}'`);
    text = text.slice(1);
  }

  const head = /^(\d+)\.(\d+)(?:([.-])(\d+))?/.exec(text);
  if (!head) {
    problems.push(`'${tag}' does not start with an Astro Runtime version (such as 3.1-8 for Airflow 3 or 12.5.0 for Airflow 2)`);
    const latest = feed ? latestRuntimeVersion(feed, context.generationHint ? { generation: context.generationHint } : {}) : undefined;
    const analysis: RuntimeTagAnalysis = { problems, correctedIsTemplate: latest === undefined };
    analysis.corrected = latest ?? '<version>';
    if (context.generationHint) analysis.generation = context.generationHint;
    return analysis;
  }

  const [, rawMajor, rawMinor, separator, rawPatch] = head as unknown as [string, string, string, string | undefined, string | undefined];
  const majorText = stripLeadingZeros(rawMajor);
  const minorText = stripLeadingZeros(rawMinor);
  const patchText = rawPatch === undefined ? undefined : stripLeadingZeros(rawPatch);
  if (majorText !== rawMajor || minorText !== rawMinor || patchText !== rawPatch) {
    problems.push('version numbers are written without leading zeros');
  }
  const major = Number(majorText);
  const minor = Number(minorText);

  let generation: RuntimeGeneration;
  let floating = false;
  let version: string;
  if (separator === '-') {
    generation = 'airflow3';
    version = `${majorText}.${minorText}-${patchText as string}`;
    if (major < 3) {
      problems.push(
        `'${version}' is not an Astro Runtime version: the X.Y-Z form is for Airflow 3 Runtime (3.0-1 and later), Airflow 2 Runtime versions look like 12.5.0`,
      );
      fixable = false;
    }
  } else if (separator === '.') {
    const dotted = `${majorText}.${minorText}.${patchText as string}`;
    const hyphenated = `${majorText}.${minorText}-${patchText as string}`;
    // Airflow 2 Runtime 3.x only ever had 3.0.Z, so 3.1.8 and the like mean the Airflow 3 version 3.1-8.
    const meantAirflow3 =
      (major === 3 && minor >= 1) ||
      (feed !== undefined &&
        feed.releases.some((r) => r.generation === 'airflow3' && r.version === hyphenated) &&
        !feed.releases.some((r) => r.generation === 'airflow2' && r.version === dotted));
    if (meantAirflow3) {
      problems.push(`Airflow 3 Runtime versions have a hyphen before the patch number: ${hyphenated}, not ${dotted}`);
      generation = 'airflow3';
      version = hyphenated;
    } else {
      generation = 'airflow2';
      version = dotted;
    }
  } else if (major >= 3 && major <= 8) {
    // X.Y with an Airflow major in front is a floating Airflow 3 tag; Airflow 2 Runtime majors 9-13 never float.
    generation = 'airflow3';
    floating = true;
    version = `${majorText}.${minorText}`;
  } else {
    generation = 'airflow2';
    const minorLine = `${majorText}.${minorText}`;
    const resolved = feed ? resolveFloatingVersion(feed, minorLine, 'airflow2') : undefined;
    problems.push(`Airflow 2 Runtime tags need the patch version (${minorLine}.<patch>); floating tags exist only for Airflow 3`);
    version = resolved ?? `${minorLine}.${patchPlaceholder}`;
    if (resolved === undefined) template = true;
  }

  // Segments after the version.
  let rest = text.slice(head[0].length);
  if (rest !== '' && !rest.startsWith('-')) {
    problems.push(`segments are separated from the version and from each other by '-'`);
    rest = `-${/^[._]/.test(rest) ? rest.slice(1) : rest}`;
  }
  const tokens = rest === '' ? [] : rest.slice(1).split('-');
  const segments: Segment[] = [];
  let sawUpperCase = false;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    const word = token.toLowerCase();
    if (token === '') {
      problems.push(`remove the extra '-'`);
      continue;
    }
    if (word !== token) sawUpperCase = true;

    if (word === 'ubi9' || word === 'slim' || word === 'base') {
      segments.push({ kind: word === 'ubi9' ? 'os' : word });
      continue;
    }
    if (prereleasePattern.test(word)) {
      segments.push({ kind: 'prerelease', value: word });
      continue;
    }
    const gluedPython = /^(?:python|py)(\d)\.?(\d{1,2})$/.exec(word);
    if (gluedPython) {
      const python = `${gluedPython[1] as string}.${stripLeadingZeros(gluedPython[2] as string)}`;
      problems.push(`write the Python segment as -python-${python}, not -${token}`);
      if (gluedPython[1] !== '3') {
        problems.push(`Astro Runtime images are built for Python 3, not Python ${python}`);
        fixable = false;
      }
      segments.push({ kind: 'python', value: python });
      continue;
    }
    if (word === 'python' || word === 'py' || (word.length >= 4 && editDistance(word, 'python') <= 2)) {
      const next = tokens[i + 1];
      const python = next === undefined ? undefined : readPythonVersion(next);
      if (word !== 'python') {
        const meant = python !== undefined && 'version' in python ? `-python-${python.version}` : '-python-3.N';
        problems.push(`write the Python segment as ${meant}, not -${token}${next !== undefined && python !== undefined ? `-${next}` : ''}`);
      }
      if (python === undefined) {
        problems.push('-python must be followed by a Python version, such as -python-3.12');
        fixable = false;
        continue;
      }
      i++;
      if ('invalid' in python) {
        problems.push(python.invalid);
        fixable = false;
        continue;
      }
      if (python.problem) problems.push(python.problem);
      segments.push({ kind: 'python', value: python.version });
      continue;
    }
    if (/^3\.\d{1,2}$/.test(word)) {
      problems.push(`a Python version is written -python-${word}, not -${word}`);
      segments.push({ kind: 'python', value: `3.${stripLeadingZeros(word.slice(2))}` });
      continue;
    }
    if (word === 'ubi' || word === 'rhel' || word === 'rhel9' || word === 'redhat') {
      const spelledOut = word === 'ubi' && tokens[i + 1] === '9';
      if (spelledOut) i++;
      problems.push(`the Red Hat UBI 9 variant is written -ubi9, not -${spelledOut ? 'ubi-9' : token}`);
      segments.push({ kind: 'os' });
      continue;
    }
    if (/^(?:ubi|rhel)\d+$/.test(word)) {
      problems.push(`-${token} does not exist: Red Hat UBI 9 (-ubi9) is the only alternative to the default Debian image`);
      segments.push({ kind: 'os' });
      continue;
    }
    if (['debian', 'bookworm', 'bullseye', 'trixie'].includes(word)) {
      problems.push(`Debian is the default OS and has no segment; remove -${token}`);
      continue;
    }
    if (word === 'onbuild') {
      problems.push('every Runtime image that is not -base already carries the ONBUILD steps; remove -onbuild');
      continue;
    }
    const near = closestWord(word, ['base', 'slim', 'ubi9'], () => 1);
    if (near !== undefined) {
      problems.push(`unknown segment -${token}; did you mean -${near}?`);
      segments.push({ kind: near === 'ubi9' ? 'os' : (near as 'base' | 'slim') });
      continue;
    }
    problems.push(`unknown segment -${token}; the tag grammar is ${grammarFor(generation)}`);
  }
  if (sawUpperCase) problems.push('Runtime tags are lower-case');

  // Repeated segments keep their first position.
  const unique: Segment[] = [];
  for (const segment of segments) {
    const earlier = unique.find((s) => s.kind === segment.kind);
    if (earlier === undefined) {
      unique.push(segment);
      continue;
    }
    if (earlier.value !== segment.value) {
      problems.push(
        `the tag has two different ${segment.kind === 'python' ? 'Python versions' : `${segment.kind} segments`} (${segmentName(earlier)} and ${segmentName(segment)})`,
      );
      fixable = false;
    } else {
      problems.push(`${segmentName(segment)} appears more than once`);
    }
  }

  const ranks = unique.map((segment) => segmentRank[segment.kind]);
  if (ranks.some((rank, i) => i > 0 && rank < (ranks[i - 1] as number))) {
    problems.push(`segments are out of order: ${unique.map(segmentName).join('')} should read in the order ${grammarFor(generation)}`);
  }

  const has = (kind: SegmentKind): Segment | undefined => unique.find((segment) => segment.kind === kind);
  const pythonSegment = has('python');
  const prerelease = has('prerelease');
  let python = pythonSegment?.value;
  let os: RuntimeOs = has('os') ? 'ubi9' : 'debian';
  let slim = has('slim') !== undefined;
  const base = has('base') !== undefined;
  const slimIndex = unique.findIndex((s) => s.kind === 'slim');
  const pythonIndex = unique.findIndex((s) => s.kind === 'python');
  const slimBeforePython = slimIndex !== -1 && pythonIndex !== -1 && slimIndex < pythonIndex;

  if (generation === 'airflow3' && slim) {
    problems.push('-slim exists only for Airflow 2 Runtime: every Airflow 3 image already ships only the providers Astro needs');
    slim = false;
  }

  if (prerelease !== undefined && !floating && !template) {
    version = `${version}-${prerelease.value as string}`;
  }
  if (floating && (os === 'ubi9' || python !== undefined || prerelease !== undefined)) {
    const resolved = feed ? resolveFloatingVersion(feed, version) : undefined;
    problems.push(
      `floating tags exist only as ${version} and ${version}-base; pin a patch version to combine it with ${[
        os === 'ubi9' ? '-ubi9' : undefined,
        python !== undefined ? `-python-${python}` : undefined,
        prerelease !== undefined ? `-${prerelease.value as string}` : undefined,
      ]
        .filter((s) => s !== undefined)
        .join(' and ')}`,
    );
    version = resolved ?? `${version}-${patchPlaceholder}`;
    if (resolved === undefined) template = true;
    if (prerelease !== undefined && resolved === undefined) version = `${version}-${prerelease.value as string}`;
    floating = false;
  }

  // Availability of image types by Runtime version (Airflow 2 only; every Airflow 3 version has all of them).
  const concrete = !template && parseRuntimeVersion(version) !== undefined;
  if (generation === 'airflow2' && concrete) {
    const info = parseRuntimeVersion(version);
    if (python !== undefined && info !== undefined && info.major < 9) {
      problems.push(`Python-specific images start with Astro Runtime 9.0.0; ${version} has only its default Python`);
      python = undefined;
    }
    if (slim && info !== undefined && info.major < 11) {
      problems.push(`slim images start with Astro Runtime 11.0.0; there is no slim ${version}`);
      slim = false;
    }
    if (os === 'ubi9' && !ubi9Published(version)) {
      problems.push(`RHEL UBI 9 images exist for Astro Runtime 11.13.0 to 11.x and for 12.3.0 and later, not for ${version}`);
      os = 'debian';
    }
  }

  if (feed !== undefined && python !== undefined && !floating && concrete) {
    const release = findRuntimeRelease(feed, version);
    if (release !== undefined && release.pythonVersions.length > 0 && !release.pythonVersions.includes(python)) {
      const fallback = release.defaultPythonVersion ? ` (without it you get the default, Python ${release.defaultPythonVersion})` : '';
      problems.push(`Astro Runtime ${version} is published for Python ${release.pythonVersions.join(', ')}; there is no -python-${python} image${fallback}`);
      python = undefined;
    }
  }

  const parts: RuntimeTagParts = { version, generation, floating, os, slim, base };
  if (python !== undefined) parts.python = python;
  if (slim && python !== undefined && slimBeforePython) parts.slimBeforePython = true;

  if (problems.length === 0) return { tag: { ...parts, tag }, problems, correctedIsTemplate: false, generation };
  const analysis: RuntimeTagAnalysis = { problems, correctedIsTemplate: template, generation };
  if (fixable) {
    const corrected = formatRuntimeTag(parts);
    if (corrected !== tag) analysis.corrected = corrected;
  }
  return analysis;
}

// ---------------------------------------------------------------------------------------------------------------
// Whole image references

export interface RuntimeImageErrorDetails {
  /** The image (or bare tag) as written. */
  image: string;
  problems: string[];
  correctedImage?: string;
  correctedIsTemplate?: boolean;
  /** Where the image was found, e.g. `Dockerfile:1`; prefixed to the message. */
  location?: string;
  nextStep?: string;
}

export class RuntimeImageError extends UserError {
  override readonly kind: string = 'runtime-image';
  readonly image: string;
  readonly problems: string[];
  /** The corrected image reference (or tag), when every problem has a fix. */
  readonly correctedImage?: string;
  readonly correctedIsTemplate: boolean;
  readonly location?: string;

  constructor(details: RuntimeImageErrorDetails) {
    const { image, problems, correctedImage, location } = details;
    const correctedIsTemplate = details.correctedIsTemplate ?? false;
    const lines = [
      `${location === undefined ? '' : `${location}: `}The Astro Runtime image '${image}' is not valid:`,
      ...problems.map((problem) => `  - ${problem}.`),
    ];
    if (correctedImage !== undefined) {
      lines.push(`Use: ${correctedImage}${correctedIsTemplate ? ' (fill in the <placeholder> with a released version number)' : ''}`);
    }
    super(lines.join('\n'), details.nextStep === undefined ? {} : { nextStep: details.nextStep });
    this.image = image;
    this.problems = problems;
    if (correctedImage !== undefined) this.correctedImage = correctedImage;
    this.correctedIsTemplate = correctedIsTemplate;
    if (location !== undefined) this.location = location;
  }

  /** The same error, placed at a Dockerfile location with a next step that says what to change there. */
  at(location: string, nextStep: string | undefined): RuntimeImageError {
    const details: RuntimeImageErrorDetails = { image: this.image, problems: this.problems, correctedIsTemplate: this.correctedIsTemplate, location };
    if (this.correctedImage !== undefined) details.correctedImage = this.correctedImage;
    if (nextStep !== undefined) details.nextStep = nextStep;
    return new RuntimeImageError(details);
  }
}

/** Parses a bare tag; throws {@link RuntimeImageError} listing every problem and the corrected tag. */
export function parseRuntimeTag(tag: string, context: RuntimeTagContext = {}): RuntimeTag {
  const analysis = analyzeRuntimeTag(tag, context);
  if (analysis.tag) return analysis.tag;
  const details: RuntimeImageErrorDetails = { image: tag, problems: analysis.problems, correctedIsTemplate: analysis.correctedIsTemplate };
  if (analysis.corrected !== undefined) details.correctedImage = analysis.corrected;
  throw new RuntimeImageError(details);
}

export type BaseImageClass =
  | { kind: 'runtime'; reference: ImageReference; repository: RuntimeRepository; /** Undefined when pinned by digest only. */ tag?: RuntimeTag }
  | { kind: 'not-runtime'; reference: ImageReference };

const runtimeRepositories: readonly RuntimeRepository[] = [AIRFLOW3_RUNTIME_REPOSITORY, AIRFLOW2_RUNTIME_REPOSITORY];

/** A repository that is almost a Runtime repository is a typo; a private mirror or another image is not. */
function nearRuntimeRepository(reference: ImageReference): RuntimeRepository | undefined {
  const domain = reference.domain?.toLowerCase();
  if (
    domain === 'astrocrpublic.azurecr.io' &&
    (['astro-runtime', 'astronomer/runtime', 'astronomer/astro-runtime'].includes(reference.path) || editDistance(reference.path, 'runtime') <= 2)
  ) {
    return AIRFLOW3_RUNTIME_REPOSITORY;
  }
  if (
    domain === 'quay.io' &&
    reference.path.startsWith('astronomer/') &&
    (reference.path === 'astronomer/runtime' || editDistance(reference.path, 'astronomer/astro-runtime') <= 3)
  ) {
    return AIRFLOW2_RUNTIME_REPOSITORY;
  }
  return runtimeRepositories.find((repository) => editDistance(reference.name.toLowerCase(), repository) <= 3);
}

/**
 * Decides whether a base image is an Astro Runtime image and, if it is, checks its tag. A repository that is not a
 * Runtime repository is `not-runtime` (it may be a private mirror; the image label decides after the build).
 * Throws {@link RuntimeImageError} for a misspelled Runtime repository, a wrong tag, an Airflow 3 tag on the
 * Airflow 2 registry, or a missing tag.
 */
export function classifyBaseImage(reference: ImageReference, context: Pick<RuntimeTagContext, 'feed'> = {}): BaseImageClass {
  const problems: string[] = [];
  let fixable = true;
  let template = false;

  let repository = runtimeRepositories.find((candidate) => candidate === reference.name);
  if (repository === undefined) {
    const near = nearRuntimeRepository(reference);
    if (near === undefined) return { kind: 'not-runtime', reference };
    problems.push(`'${reference.name}' is not an Astro Runtime repository; Runtime images are published at ${near}`);
    repository = near;
  }

  const generations = RUNTIME_REPOSITORY_GENERATIONS[repository];
  let tagText = reference.tag;
  let tag: RuntimeTag | undefined;
  let keepDigest = reference.digest !== undefined;

  if (tagText === undefined && reference.digest === undefined) {
    const latest = context.feed ? latestRuntimeVersion(context.feed, { generation: generations[0] as RuntimeGeneration }) : undefined;
    problems.push(`the image has no tag, so Docker would look for 'latest', which Astro Runtime does not publish; name a Runtime version`);
    tagText = latest ?? '<version>';
    template = latest === undefined;
  } else if (tagText !== undefined) {
    const analysis = analyzeRuntimeTag(tagText, { ...context, generationHint: generations[0] as RuntimeGeneration });
    problems.push(...analysis.problems);
    if (analysis.tag) {
      tag = analysis.tag;
    } else if (analysis.corrected !== undefined) {
      tagText = analysis.corrected;
      template ||= analysis.correctedIsTemplate;
      keepDigest = false;
    } else {
      fixable = false;
    }
    const generation = analysis.tag?.generation ?? analysis.generation;
    if (generation !== undefined && !generations.includes(generation)) {
      problems.push(`Airflow 3 Runtime images are published only at ${AIRFLOW3_RUNTIME_REPOSITORY}, not at ${repository}`);
      repository = AIRFLOW3_RUNTIME_REPOSITORY;
    }
  }

  if (problems.length === 0) {
    const result: BaseImageClass = { kind: 'runtime', reference, repository };
    if (tag !== undefined) result.tag = tag;
    return result;
  }
  const corrected = fixable
    ? formatImageReference({
        name: repository,
        ...(tagText !== undefined ? { tag: tagText } : {}),
        ...(keepDigest && reference.digest ? { digest: reference.digest } : {}),
      })
    : undefined;
  const details: RuntimeImageErrorDetails = { image: reference.raw, problems, correctedIsTemplate: template };
  if (corrected !== undefined) details.correctedImage = corrected;
  throw new RuntimeImageError(details);
}
