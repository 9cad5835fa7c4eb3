/**
 * The config file format of Astronomer's CLI (viper YAML): lower-case keys, scalars often written as strings
 * ("true", "443"), contexts keyed by domain with dots replaced by underscores. Unknown keys are kept as they are.
 */
import * as z from 'zod';

// Built once and shared by every field they type (a schema is immutable): fewer instances to build on nearly every
// command, which checks the config as it starts.
const text = z.string().optional();
const scalar = z.union([z.string(), z.boolean(), z.number()]).optional();

export const contextSchema = z.looseObject({
  domain: text,
  organization: text,
  organization_product: text,
  workspace: text,
  last_used_workspace: text,
  token: text,
  refreshtoken: text,
  user_email: text,
  expiresin: z.union([z.string(), z.date()]).optional(),
});
export type ContextEntry = z.infer<typeof contextSchema>;

export const configFileSchema = z.looseObject({
  context: text,
  contexts: z.record(z.string(), contextSchema.nullable()).optional(),
  cloud: z.looseObject({ api: z.looseObject({ protocol: scalar, port: scalar }).optional() }).optional(),
  local: z
    .looseObject({
      core: scalar,
      registry: scalar,
      houston: scalar,
      platform: scalar,
    })
    .optional(),
  project: z.looseObject({ deployment: scalar, workspace: scalar, name: scalar }).optional(),
});
export type ConfigFile = z.infer<typeof configFileSchema>;

/**
 * Every setting of Astronomer's CLI (1.45) with its default, as it knows them (dotted, lower-case keys), and our
 * own few. `astro config set` takes exactly these; other keys in a file are kept as they are on every write.
 */
export const SETTING_DEFAULTS: Readonly<Record<string, string>> = {
  'cloud.api.protocol': 'https',
  'cloud.api.port': '443',
  'cloud.api.ws_protocol': 'wss',
  'cloud.api.token': '',
  'container.binary': '',
  'local.core': 'http://localhost:8888',
  'local.registry': 'localhost:5555',
  'local.houston': '',
  'local.platform': 'cloud',
  'postgres.user': 'postgres',
  'postgres.password': 'postgres',
  'postgres.host': 'postgres',
  'postgres.port': '5432',
  'postgres.repository': 'docker.io/postgres',
  'postgres.tag': '12.6',
  'project.deployment': '',
  'project.name': '',
  'project.workspace': '',
  'webserver.port': '8080',
  'api-server.port': '8080',
  'airflow.expose_port': 'false',
  show_warnings: 'true',
  verbosity: 'warning',
  'houston.dial_timeout': '10',
  'houston.skip_verify_tls': 'false',
  duplicate_volumes: 'true',
  skip_parse: 'false',
  interactive: 'false',
  page_size: '20',
  upgrade_message: 'true',
  disable_astro_run: 'false',
  auto_select: 'false',
  'machine.cpu': '2',
  'machine.memory': '4096',
  sha_as_tag: 'false',
  'ruff.image': 'ghcr.io/astral-sh/ruff:latest',
  'remote.client_registry': '',
  'remote.base_image_registry': 'images.astronomer.cloud',
  'deploy.git_metadata': 'true',
  'dev.mode': 'docker',
  'dev.build_secrets': '',
  'telemetry.enabled': 'true',
  'telemetry.anonymous_id': '',
  'telemetry.notice_shown': '',
  'proxy.port': '6563',
  'otto.auto_update': 'true',
  'cosmos_boost.pre_deploy': 'false',
  // Our own additions, ignored by Astronomer's CLI.
  'parse.python': '',
  /** Port of the browser-login callback (Astro expects 12345; 0 picks a free one). */
  'login.callback_port': '12345',
};

/** Checks Astronomer's CLI makes before `config set` writes a value; the message says what is wrong. */
export const SETTING_VALIDATORS: Readonly<Record<string, (value: string) => string | undefined>> = {
  'dev.mode': (v) => (v === 'docker' || v === 'standalone' ? undefined : `dev.mode must be "docker" or "standalone", not "${v}"`),
  'remote.client_registry': (v) => {
    if (v === '') return 'the registry endpoint cannot be empty';
    if (!v.includes('/')) return 'the registry endpoint must be registry/repository, e.g. quay.io/acme/my-deployment-image';
    if (v.includes(' ')) return 'the registry endpoint cannot contain spaces';
    if (v.startsWith('/') || v.endsWith('/')) return 'the registry endpoint cannot start or end with a slash';
    return undefined;
  },
};

/** Keys read from the project file only (never from the global one). */
export const PROJECT_ONLY_KEYS = new Set(['project.deployment']);

export function contextKey(domain: string): string {
  return domain.replaceAll('.', '_');
}
