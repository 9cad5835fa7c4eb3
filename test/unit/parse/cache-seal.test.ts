import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { SEAL_KEYS, sealedSchemas } from '../../../src/parse/cache.js';

// A sealed cache file is read without validating it when its seal names the same shape: the key must change with
// the schema, or a file written for an older shape would be trusted as the new one.
describe('the parse cache seal keys', () => {
  for (const name of ['stat', 'state'] as const) {
    it(`names the ${name} file's schema (change the schema, and copy the new value into SEAL_KEYS)`, () => {
      const schema = JSON.stringify(z.toJSONSchema(sealedSchemas[name], { io: 'output' }));
      const expected = `parse-${name}:${createHash('sha256').update(schema).digest('hex')}`;
      expect(SEAL_KEYS[name]).toBe(expected);
    });
  }
});
