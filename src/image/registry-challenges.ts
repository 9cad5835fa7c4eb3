/**
 * The Bearer challenge each registry sent last time (its token realm and service), kept per registry host in a small
 * JSON file in astro's cache: never a token or a credential. The plan's registry read asks that realm for its token
 * first instead of making an unauthenticated request only to be challenged again: far from the registry, a round trip.
 */
import * as z from 'zod';
import { readJsonFile, writeJsonFileAtomic } from '../util/json-file.js';
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
  const read = async () => (await readJsonFile(file, challenges).catch(() => undefined)) ?? {};
  return {
    read: async (host) => (await read())[host],
    remember: async (host, challenge) => {
      const known = await read();
      const before = known[host];
      if (before?.realm === challenge.realm && before.service === challenge.service) return;
      const next = Object.keys(known).length >= MAX_REMEMBERED ? {} : known;
      next[host] = challenge;
      await writeJsonFileAtomic(file, next).catch(() => undefined);
    },
  };
}
