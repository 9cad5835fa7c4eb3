/**
 * The Bearer challenge each registry sent last time (its token realm and service), kept per registry host in a small
 * JSON file in astro's cache: never a token or a credential. The plan's registry read asks that realm for its token
 * first instead of making an unauthenticated request only to be challenged again: far from the registry, a round trip.
 */
import * as z from 'zod';
import { readJsonFile, rememberInFile } from '../util/json-file.js';
import { registryChallengeSchema, type RegistryChallenge } from './registry.js';

/** Hosts remembered at most; beyond it the file starts again (it is a guess, not a record). */
const MAX_REMEMBERED = 50;

const challenges = z.record(z.string(), registryChallengeSchema);

export interface RememberedChallenges {
  /** The challenge `host` sent last time, if remembered (never fails: unreadable is unknown). */
  read(host: string): Promise<RegistryChallenge | undefined>;
  /** Remembers the challenge `host` sent, when it is not the one remembered. Never fails. */
  remember(host: string, challenge: RegistryChallenge): Promise<void>;
}

export function rememberedChallenges(file: string): RememberedChallenges {
  return {
    read: async (host) => (await readJsonFile(file, challenges))?.[host],
    remember: (host, challenge) =>
      rememberInFile(file, challenges, host, challenge, {
        max: MAX_REMEMBERED,
        same: (a, b) => a.realm === b.realm && a.service === b.service,
      }),
  };
}
