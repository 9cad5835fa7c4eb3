/**
 * Reading and writing one config file: validated on every read, written atomically (temp file + rename) with
 * mode 0600 under the lock Astronomer's CLI takes too (flock on `<file>.lock`), and never overwritten when what is
 * on disk cannot be understood.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml, YAMLParseError } from 'yaml';
import { UserError } from '../errors.js';
import { withFileLock, type FileLockOptions } from './lock.js';
import { configFileSchema, type ConfigFile } from './schema.js';
import { CHECKED_ONCE } from '../util/checked-once.js';

export class ConfigFileError extends UserError {
  override readonly kind = 'config';
  readonly file: string;
  constructor(file: string, problem: string, cause?: unknown) {
    super(`The config file ${file} cannot be used: ${problem}`, {
      nextStep: `Fix the file by hand, or move it aside (mv ${file} ${file}.bak) and log in again. astro will not overwrite it.`,
      cause,
    });
    this.file = file;
  }
}

/** viper lower-cases every key; so do we, recursively, so `Contexts:` and `contexts:` mean the same. */
function lowerKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(lowerKeys);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toLowerCase(), lowerKeys(v)]));
  }
  return value;
}

function parseConfigText(file: string, text: string): ConfigFile {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: false });
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? ` (line ${error.linePos[0].line})` : '';
    throw new ConfigFileError(file, `it is not valid YAML${where}: ${(error as Error).message.split('\n')[0]}`, error);
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigFileError(file, 'its top level must be a mapping of keys to values');
  }
  const result = configFileSchema.safeParse(lowerKeys(raw), CHECKED_ONCE);
  if (!result.success) {
    const issue = result.error.issues[0];
    const at = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new ConfigFileError(file, `unexpected value${at}: ${issue?.message ?? 'invalid'}`, result.error);
  }
  return result.data;
}

/** Reads and validates a config file; undefined when it does not exist. */
export async function readConfigFile(file: string): Promise<ConfigFile | undefined> {
  let text: string;
  try {
    // Read at once (a few hundred bytes): the asynchronous read costs a trip through libuv's threads, and loading
    // node:fs/promises, on every command.
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EISDIR') throw new ConfigFileError(file, 'it is a directory, not a file', error);
    throw new ConfigFileError(file, `it cannot be read (${code ?? (error as Error).message})`, error);
  }
  return parseConfigText(file, text);
}

async function writeAtomically(file: string, content: string): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.chmod(temp, 0o600);
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

/**
 * Read-modify-write under the config lock: the file is re-read inside the lock, so two processes never lose each
 * other's changes. The mutator may change the document in place or return a new one.
 */
export async function updateConfigFile(
  file: string,
  mutate: (doc: ConfigFile) => ConfigFile | void | Promise<ConfigFile | void>,
  lockOptions: FileLockOptions = {},
): Promise<ConfigFile> {
  // Astronomer's CLI creates the folder 0775; ours stays private, and an existing one keeps its mode.
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  return withFileLock(
    `${file}.lock`,
    async () => {
      const current = (await readConfigFile(file)) ?? {};
      const next = (await mutate(current)) ?? current;
      const checked = configFileSchema.parse(next, CHECKED_ONCE);
      await writeAtomically(file, stringifyYaml(checked, { lineWidth: 0 }));
      return checked;
    },
    lockOptions,
  );
}
