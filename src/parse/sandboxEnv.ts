/**
 * The environment DAG code runs with. Nothing of the caller's environment reaches it except a short allowlist
 * (what an interpreter needs to start and to decode text), plus what the project's env file sets, as
 * Astronomer's parse container would have it; credentials of astro itself never do, whatever their source.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { CREDENTIAL_ENV_VARS } from '../env.js';
import type { EnvFileEntry } from './envFile.js';

/** Variables copied from the caller's environment in host mode. */
export const HOST_ENV_ALLOWLIST = ['PATH', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'] as const;

const CREDENTIAL_NAMES = new Set<string>([...CREDENTIAL_ENV_VARS, 'ASTRO_TOKEN', 'ASTRONOMER_API_TOKEN', 'ASTRONOMER_KEY']);

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

/**
 * What the Runtime image gives DAG code in host mode too, unless the env file says otherwise: the project root on
 * PYTHONPATH (so `include.*` imports), and no example DAGs.
 */
export function runtimeLayoutDefaults(env: Record<string, string>, projectRoot: string): Record<string, string> {
  return {
    ...env,
    AIRFLOW_HOME: env.AIRFLOW_HOME ?? projectRoot,
    PYTHONPATH: env.PYTHONPATH ?? projectRoot,
    AIRFLOW__CORE__LOAD_EXAMPLES: env.AIRFLOW__CORE__LOAD_EXAMPLES ?? 'False',
  };
}

/**
 * Where Airflow keeps its state during a parse: a throwaway directory, never the project. Both majors' settings
 * for every path Airflow writes while it starts: the database, the logs, Airflow 2's processor logs (which it puts
 * under $AIRFLOW_HOME/logs/scheduler whatever the base log folder), Airflow 3's, and airflow.cfg, which both write
 * when the file is missing (`configFile`: only when the project has no airflow.cfg of its own).
 */
export function airflowStateEnvironment(stateDir: string, homeDir: string, configFile?: string): Record<string, string> {
  return {
    HOME: homeDir,
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: `sqlite:///${stateDir}/airflow.db`,
    AIRFLOW__LOGGING__BASE_LOG_FOLDER: `${stateDir}/logs`,
    AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY: `${stateDir}/logs/dag-processor`,
    AIRFLOW__SCHEDULER__CHILD_PROCESS_LOG_DIRECTORY: `${stateDir}/logs/scheduler`,
    AIRFLOW__LOGGING__DAG_PROCESSOR_MANAGER_LOG_LOCATION: `${stateDir}/logs/dag_processor_manager/dag_processor_manager.log`,
    ...(configFile !== undefined ? { AIRFLOW_CONFIG: configFile } : {}),
    PYTHONDONTWRITEBYTECODE: '1',
  };
}

/**
 * Airflow writes a default airflow.cfg into AIRFLOW_HOME when there is none; point it at the scratch directory
 * then, so that even an unsandboxed run leaves the project alone. A project's own airflow.cfg is used as is.
 */
export async function projectConfigFile(env: Record<string, string>, scratch: string): Promise<string | undefined> {
  if (env.AIRFLOW_CONFIG !== undefined) return undefined;
  const home = env.AIRFLOW_HOME;
  if (
    home !== undefined &&
    (await fs.stat(path.join(home, 'airflow.cfg')).then(
      () => true,
      () => false,
    ))
  )
    return undefined;
  return path.join(scratch, 'airflow.cfg');
}
