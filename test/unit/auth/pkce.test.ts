import { describe, expect, it } from 'vitest';
import { challengeFor, createPkce, createState } from '../../../src/auth/pkce.js';

describe('PKCE', () => {
  it('derives the S256 challenge of RFC 7636, appendix B', () => {
    expect(challengeFor('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('makes a 43-character base64url verifier from 32 random bytes, different every time', () => {
    const a = createPkce();
    const b = createPkce();
    expect(a.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.verifier).not.toBe(b.verifier);
    expect(a.challenge).toBe(challengeFor(a.verifier));
    expect(a.method).toBe('S256');
  });

  it('uses the random source it is given (no clock-seeded PRNG)', () => {
    const pkce = createPkce((size) => Buffer.alloc(size, 7));
    expect(pkce.verifier).toBe(Buffer.alloc(32, 7).toString('base64url'));
    expect(createState((size) => Buffer.alloc(size, 1))).toBe(Buffer.alloc(16, 1).toString('base64url'));
  });
});
