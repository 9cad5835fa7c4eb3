/**
 * Astro Runtime version strings and how they compare (reference 7.3).
 *
 * Two spellings exist. Airflow 2 Runtime uses semver (`12.5.0`); Airflow 3 Runtime uses `A.B-C` (`3.1-8`), where
 * `A.B` is the Airflow major.minor and `C` Astronomer's patch. Comparison normalises the new form to semver
 * (`3.1-8` -> `3.1.8`), ranks every new-form version above every old-form one, and ranks invalid strings below
 * valid ones. Semver validity follows Go's golang.org/x/mod/semver, which the platform's own checks use: `X` and
 * `X.Y` shorthands are valid (without pre-release or build), leading zeros are not.
 */

export type VersionFormat = 'new' | 'old';

interface SemverParts {
  major: string;
  minor: string;
  patch: string;
  prerelease: string[];
}

export interface RuntimeVersionInfo {
  /** The string as given. */
  raw: string;
  format: VersionFormat;
  major: number;
  minor: number;
  patch: number;
  /** Dot-separated pre-release identifiers, empty for a release. */
  prerelease: string[];
  /** Airflow major this Runtime version belongs to: 2 for every old-form version, the first number otherwise. */
  airflowMajor: number;
}

const newFormatPattern = /^(\d+)\.(\d+)-(\d+)(?:[.-](.+))?$/;
const numericPattern = /^(0|[1-9]\d*)$/;
const identifierPattern = /^[0-9A-Za-z-]+$/;

function stripPrefix(version: string): string {
  return version.startsWith('v') ? version.slice(1) : version;
}

/** True for the Airflow 3 spelling `A.B-C[-pre]`, with or without a leading `v`. */
export function isNewFormatVersion(version: string): boolean {
  return newFormatPattern.test(stripPrefix(version));
}

/** `3.1-8` -> `3.1.8`, `3.1-1-rc1` -> `3.1.1-rc1`; anything else is returned as it is. */
export function normalizeRuntimeVersion(version: string): string {
  const stripped = stripPrefix(version);
  const match = newFormatPattern.exec(stripped);
  if (!match) return stripped;
  const [, major, minor, patch, prerelease] = match;
  return `${major}.${minor}.${patch}${prerelease ? `-${prerelease}` : ''}`;
}

function parseNumber(text: string): string | undefined {
  return numericPattern.test(text) ? text : undefined;
}

function parseIdentifiers(text: string, numericMustBeCanonical: boolean): string[] | undefined {
  const identifiers = text.split('.');
  for (const identifier of identifiers) {
    if (!identifierPattern.test(identifier)) return undefined;
    if (numericMustBeCanonical && /^\d+$/.test(identifier) && !numericPattern.test(identifier)) return undefined;
  }
  return identifiers;
}

/** Semver as golang.org/x/mod/semver accepts it (without its mandatory `v`). */
function parseSemver(text: string): SemverParts | undefined {
  const buildAt = text.indexOf('+');
  const withoutBuild = buildAt === -1 ? text : text.slice(0, buildAt);
  if (buildAt !== -1 && parseIdentifiers(text.slice(buildAt + 1), false) === undefined) return undefined;

  const dashAt = withoutBuild.indexOf('-');
  const core = dashAt === -1 ? withoutBuild : withoutBuild.slice(0, dashAt);
  const prereleaseText = dashAt === -1 ? undefined : withoutBuild.slice(dashAt + 1);
  const numbers = core.split('.');
  if (numbers.length > 3) return undefined;
  const [major, minor, patch] = numbers.map(parseNumber);
  if (major === undefined) return undefined;
  if (numbers.length >= 2 && minor === undefined) return undefined;
  if (numbers.length === 3 && patch === undefined) return undefined;
  const shorthand = numbers.length < 3;
  // Shorthands stand for X.0.0 / X.Y.0 and may not carry a pre-release or build suffix.
  if (shorthand && (prereleaseText !== undefined || buildAt !== -1)) return undefined;

  let prerelease: string[] = [];
  if (prereleaseText !== undefined) {
    const parsed = parseIdentifiers(prereleaseText, true);
    if (parsed === undefined) return undefined;
    prerelease = parsed;
  }
  return { major, minor: minor ?? '0', patch: patch ?? '0', prerelease };
}

/** Parses a Runtime version of either format; undefined when it is not a valid version. */
export function parseRuntimeVersion(version: string): RuntimeVersionInfo | undefined {
  const parts = parseSemver(normalizeRuntimeVersion(version));
  if (!parts) return undefined;
  const format: VersionFormat = isNewFormatVersion(version) ? 'new' : 'old';
  const major = Number(parts.major);
  return {
    raw: version,
    format,
    major,
    minor: Number(parts.minor),
    patch: Number(parts.patch),
    prerelease: parts.prerelease,
    airflowMajor: format === 'new' ? major : 2,
  };
}

export function isValidRuntimeVersion(version: string): boolean {
  return parseRuntimeVersion(version) !== undefined;
}

export type Comparison = -1 | 0 | 1;

function sign(n: number): Comparison {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/** Compares decimal digit strings of any length without losing precision. */
function compareDigits(a: string, b: string): Comparison {
  if (a.length !== b.length) return sign(a.length - b.length);
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareIdentifier(a: string, b: string): Comparison {
  const aNumeric = /^\d+$/.test(a);
  const bNumeric = /^\d+$/.test(b);
  if (aNumeric && bNumeric) return compareDigits(a, b);
  if (aNumeric) return -1;
  if (bNumeric) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparePrerelease(a: string[], b: string[]): Comparison {
  if (a.length === 0 && b.length === 0) return 0;
  // A release ranks above any of its pre-releases.
  if (a.length === 0) return 1;
  if (b.length === 0) return -1;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const order = compareIdentifier(a[i] as string, b[i] as string);
    if (order !== 0) return order;
  }
  return sign(a.length - b.length);
}

function compareSemver(a: SemverParts, b: SemverParts): Comparison {
  return compareDigits(a.major, b.major) || compareDigits(a.minor, b.minor) || compareDigits(a.patch, b.patch) || comparePrerelease(a.prerelease, b.prerelease);
}

/**
 * -1, 0 or 1 as `a` is lower than, equal to or higher than `b` under the Runtime rules: invalid < valid (two invalid
 * versions are equal), any new-format version > any old-format version, otherwise semver order with build metadata
 * ignored.
 */
export function compareRuntimeVersions(a: string, b: string): Comparison {
  const aParts = parseSemver(normalizeRuntimeVersion(a));
  const bParts = parseSemver(normalizeRuntimeVersion(b));
  if (!aParts && !bParts) return 0;
  if (!aParts) return -1;
  if (!bParts) return 1;
  const aNew = isNewFormatVersion(a);
  const bNew = isNewFormatVersion(b);
  if (aNew !== bNew) return aNew ? 1 : -1;
  return compareSemver(aParts, bParts);
}

/** The semver major of the normalised version (`3.1-8` -> `3`, `12.5.0` -> `12`), `''` when invalid. */
export function runtimeVersionMajor(version: string): string {
  const parts = parseSemver(normalizeRuntimeVersion(version));
  return parts ? parts.major : '';
}

/** `'2'` for a valid old-format version, the first number of a new-format one, `''` when invalid. */
export function airflowMajorForRuntimeVersion(version: string): string {
  const info = parseRuntimeVersion(version);
  return info ? String(info.airflowMajor) : '';
}

export function isAirflow3RuntimeVersion(version: string): boolean {
  return airflowMajorForRuntimeVersion(version) === '3';
}

/** The highest of the given versions under {@link compareRuntimeVersions}; undefined for an empty list. */
export function maxRuntimeVersion(versions: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const version of versions) {
    if (best === undefined || compareRuntimeVersions(version, best) > 0) best = version;
  }
  return best;
}
