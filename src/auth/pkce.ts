/** PKCE (RFC 7636) with the S256 method: a crypto-random verifier and its SHA-256 challenge. */
import { createHash, randomBytes } from 'node:crypto';

export interface Pkce {
  /** 32 random bytes, base64url without padding: 43 characters. */
  verifier: string;
  /** base64url-no-pad(SHA-256(verifier)). */
  challenge: string;
  method: 'S256';
}

export function challengeFor(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

export function createPkce(random: (size: number) => Buffer = randomBytes): Pkce {
  const verifier = random(32).toString('base64url');
  return { verifier, challenge: challengeFor(verifier), method: 'S256' };
}

/** An unguessable `state` value tying the callback to this login attempt. */
export function createState(random: (size: number) => Buffer = randomBytes): string {
  return random(16).toString('base64url');
}
