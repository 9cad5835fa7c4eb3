import fs from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';

/** `--env`: the default `.env` may be missing; a file the user named must exist. */
export async function checkEnvFile(projectDir: string, envFile: string): Promise<void> {
  if (envFile === '.env') return;
  const full = path.resolve(projectDir, envFile);
  const isFile = await fs.stat(full).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!isFile) {
    throw new UserError(`Env file path is incorrect:  ${envFile}`, { nextStep: `There is no file ${full}; pass --env with the path of an existing env file.` });
  }
}
