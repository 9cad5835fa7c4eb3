/**
 * The environment DAG code runs with. Nothing of the caller's environment reaches it except a short allowlist
 * (what an interpreter needs to start and to decode text), plus what the project's env file sets, as
 * Astronomer's parse container would have it; credentials of astro itself never do, whatever their source.
 */
import { CREDENTIAL_ENV_VARS } from '../env.js';
import type { EnvFileEntry } from './envFile.js';

/** Variables copied from the caller's environment in host mode. */
export const HOST_ENV_ALLOWLIST = ['PATH', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'] as const;

const CREDENTIAL_NAMES = new Set<string>([
  ...CREDENTIAL_ENV_VARS,
  'ASTRO_TOKEN',
  'ASTRONOMER_API_TOKEN',
  'ASTRONOMER_KEY',
]);

/** astro's own credentials (ASTRO_API_TOKEN, ASTRONOMER_KEY_*) are never handed to DAG code. */
export function isAstroCredential(name: string): boolean {
  return CREDENTIAL_NAMES.has(name) || /^ASTRONOMER_KEY_/.test(name);
}

export interface DagEnvironmentInput {
  mode: 'host' | 'image';
  hostEnv: Readonly<Record<string, string | undefined>>;
  envFile: EnvFileEntry[];
}

/**
 * The variables that decide what DAG code sees. Host mode starts from the allowlist; image mode starts from the
 * image's own environment (so nothing is added here). The env file comes last, as `--env-file` overrides the image.
 */
export function buildDagEnvironment(input: DagEnvironmentInput): Record<string, string> {
  const env: Record<string, string> = {};
  if (input.mode === 'host') {
    for (const name of HOST_ENV_ALLOWLIST) {
      const value = input.hostEnv[name];
      if (value !== undefined) env[name] = value;
    }
    env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
    env.LANG ??= 'C.UTF-8';
  }
  for (const entry of input.envFile) {
    if (isAstroCredential(entry.name)) continue;
    env[entry.name] = entry.value;
  }
  return env;
}

/** Where Airflow keeps its state during a parse: a throwaway directory, never the project. */
export function airflowStateEnvironment(stateDir: string, homeDir: string): Record<string, string> {
  return {
    HOME: homeDir,
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: `sqlite:///${stateDir}/airflow.db`,
    AIRFLOW__LOGGING__BASE_LOG_FOLDER: `${stateDir}/logs`,
    AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY: `${stateDir}/logs/dag-processor`,
    PYTHONDONTWRITEBYTECODE: '1',
  };
}
