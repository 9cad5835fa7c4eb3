import { describe, expect, it } from 'vitest';
import { encodeRegistryAuth } from '../../../src/image/engine.js';

// The engine decodes X-Registry-Auth as Go's base64.URLEncoding, which requires '=' padding.
function goUrlDecode(text: string): string {
  if (text.length % 4 !== 0 || /[^A-Za-z0-9\-_=]/.test(text)) throw new Error('not padded URL-safe base64');
  return Buffer.from(text.replaceAll('-', '+').replaceAll('_', '/'), 'base64').toString('utf8');
}

describe('encodeRegistryAuth', () => {
  it.each([0, 1, 2, 3, 4, 5])('round-trips through padded URL-safe base64 whatever the length (+%d)', (extra) => {
    const auth = { username: 'cli', password: `Bearer eyJ${'a'.repeat(extra)}.b?c>d`, serveraddress: 'localhost:5555' };
    expect(JSON.parse(goUrlDecode(encodeRegistryAuth(auth)))).toEqual(auth);
  });
});
