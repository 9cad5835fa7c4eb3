/**
 * `.env` files as `docker run --env-file` reads them, which is how Astronomer's parse and pytest containers get
 * them: one KEY=VALUE per line, value taken literally (quotes included), `#` comments and blank lines skipped,
 * leading whitespace ignored, a bare KEY copied from the caller's environment when it is set there.
 */
import { UserError } from '../errors.js';

export interface EnvFileEntry {
  name: string;
  value: string;
  /** The line had no `=`: the value was copied from the caller's environment. */
  inherited: boolean;
}

export function parseEnvFile(content: string, lookup: (name: string) => string | undefined, fileLabel = '.env'): EnvFileEntry[] {
  const entries: EnvFileEntry[] = [];
  const lines = content.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '').replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const name = eq === -1 ? line : line.slice(0, eq);
    if (name === '') {
      throw new UserError(`${fileLabel}:${index + 1}: no variable name on line '${line}'`);
    }
    if (/[ \t]/.test(name)) {
      throw new UserError(`${fileLabel}:${index + 1}: variable '${name}' contains whitespaces`);
    }
    if (eq !== -1) {
      entries.push({ name, value: line.slice(eq + 1), inherited: false });
      return;
    }
    const value = lookup(name);
    if (value !== undefined) entries.push({ name, value, inherited: true });
  });
  return entries;
}
