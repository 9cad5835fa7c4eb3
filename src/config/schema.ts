/**
 * The config file format of Astronomer's CLI (viper YAML): lower-case keys, scalars often written as strings
 * ("true", "443"), contexts keyed by domain with dots replaced by underscores. Unknown keys are kept as they are.
 */
import { z } from 'zod';

const scalar = z.union([z.string(), z.boolean(), z.number()]);

export const contextSchema = z.looseObject({
  domain: z.string().optional(),
  organization: z.string().optional(),
  organization_product: z.string().optional(),
  workspace: z.string().optional(),
  last_used_workspace: z.string().optional(),
  token: z.string().optional(),
  refreshtoken: z.string().optional(),
  user_email: z.string().optional(),
  expiresin: z.union([z.string(), z.date()]).optional(),
});
export type ContextEntry = z.infer<typeof contextSchema>;

export const configFileSchema = z.looseObject({
  context: z.string().optional(),
  contexts: z.record(z.string(), contextSchema.nullable()).optional(),
  cloud: z.looseObject({ api: z.looseObject({ protocol: scalar.optional(), port: scalar.optional() }).optional() }).optional(),
  local: z.looseObject({
    core: scalar.optional(),
    registry: scalar.optional(),
    houston: scalar.optional(),
    platform: scalar.optional(),
  }).optional(),
  project: z.looseObject({ deployment: scalar.optional(), workspace: scalar.optional(), name: scalar.optional() }).optional(),
});
export type ConfigFile = z.infer<typeof configFileSchema>;

/** Settings with their defaults, as Astronomer's CLI knows them (dotted, lower-case keys). */
export const SETTING_DEFAULTS: Readonly<Record<string, string>> = {
  'cloud.api.protocol': 'https',
  'cloud.api.port': '443',
  'cloud.api.ws_protocol': 'wss',
  'local.core': 'http://localhost:8888',
  'local.registry': 'localhost:5555',
  'local.houston': '',
  'local.platform': 'cloud',
  'project.deployment': '',
  'project.workspace': '',
  'project.name': '',
  show_warnings: 'true',
  skip_parse: 'false',
  auto_select: 'false',
  sha_as_tag: 'false',
  'deploy.git_metadata': 'true',
  upgrade_message: 'true',
  'houston.dial_timeout': '10',
  'houston.skip_verify_tls': 'false',
  verbosity: 'warning',
  'container.binary': '',
  // Our own additions, ignored by Astronomer's CLI.
  'parse.python': '',
  /** Port of the browser-login callback (Astro expects 12345; 0 picks a free one). */
  'login.callback_port': '12345',
};

/** Keys read from the project file only (never from the global one). */
export const PROJECT_ONLY_KEYS = new Set(['project.deployment']);

export function contextKey(domain: string): string {
  return domain.replaceAll('.', '_');
}
