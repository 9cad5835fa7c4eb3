/**
 * Houston's platform version decides which GraphQL documents astro sends, because older Software releases lack
 * fields and arguments newer ones have (and a document asking for an unknown field fails as a whole).
 */
import { UserError } from '../../errors.js';

type Triple = [number, number, number];

/** `v1.2.3-rc.1`, `1.2` and `1.2.3` → [1, 2, 3]; undefined for anything that is not a version. */
export function parsePlatformVersion(version: string | undefined): Triple | undefined {
  const match = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+].*)?$/.exec((version ?? '').trim());
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)];
}

function compare(a: Triple, b: Triple): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

/** True when `version` is at least `minimum`. */
export function versionAtLeast(version: string | undefined, minimum: string): boolean {
  const v = parsePlatformVersion(version);
  const m = parsePlatformVersion(minimum);
  if (!v || !m) return false;
  return compare(v, m) >= 0;
}

/**
 * From a list keyed by the first platform version that has it, the entry with the greatest key not above
 * `version`; when none fits (or the version is unknown), the newest entry, as Astronomer's CLI does.
 */
export function pickForVersion<T>(entries: Readonly<Record<string, T>>, version: string | undefined): T {
  const keyed = Object.entries(entries)
    .map(([key, value]) => ({ key: parsePlatformVersion(key)!, value }))
    .sort((a, b) => compare(a.key, b.key));
  if (keyed.length === 0) throw new Error('pickForVersion needs at least one entry');
  const v = parsePlatformVersion(version);
  if (v) {
    for (let i = keyed.length - 1; i >= 0; i--) if (compare(keyed[i]!.key, v) <= 0) return keyed[i]!.value;
  }
  return keyed[keyed.length - 1]!.value;
}

/** Version gates treat an unknown or empty version as 1.0.0. */
export function gateVersion(version: string | undefined): string {
  return parsePlatformVersion(version) ? version!.trim() : '1.0.0';
}

/** Refuses an operation the platform is too old for, with the message Astronomer's CLI uses. */
export function requirePlatformVersion(version: string | undefined, minimum: string, api: string): void {
  if (!versionAtLeast(gateVersion(version), minimum)) {
    throw new UserError(`${api} GraphQL API not implemented for the given Houston version`, {
      nextStep: `This needs Astronomer Software ${minimum} or later; the platform reports ${version || 'no version'}.`,
    });
  }
}
