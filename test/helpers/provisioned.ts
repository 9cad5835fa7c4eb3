/** What scripts/provision.sh set up (`.state/provision.env`): venv, Runtime image, engine socket. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface Provisioned {
  AIRFLOW_PYTHON: string;
  RUNTIME_IMAGE: string;
  RUNTIME_BASE_IMAGE: string;
  RUNTIME_VERSION: string;
  DOCKER_SOCKET: string;
  DOCKER_BIN: string;
  CHROMIUM_BIN: string;
  [key: string]: string;
}

let cached: Provisioned | undefined;

export function provisioned(): Provisioned {
  if (cached) return cached;
  const file = path.resolve('.state/provision.env');
  const values: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) values[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  cached = values as Provisioned;
  return cached;
}
