/**
 * The merged view of the global and project config files, and the operations on contexts.
 */
import path from 'node:path';
import { UsageError, UserError } from '../errors.js';
import { readConfigFile, updateConfigFile } from './file.js';
import { contextKey, PROJECT_ONLY_KEYS, SETTING_DEFAULTS, SETTING_VALIDATORS, type ConfigFile, type ContextEntry } from './schema.js';

export interface ConfigPaths {
  globalFile: string;
  /** `<project>/.astro/config.yaml`; used only when it exists and is not the global file. */
  projectFile?: string;
}

export function configPaths(astroHome: string, projectDir: string): ConfigPaths {
  const globalFile = path.join(astroHome, '.astro', 'config.yaml');
  const projectFile = path.join(projectDir, '.astro', 'config.yaml');
  return { globalFile, projectFile: path.resolve(projectFile) === path.resolve(globalFile) ? undefined : projectFile };
}

export interface Context extends ContextEntry {
  /** The key under `contexts:` (domain with dots replaced by underscores). */
  key: string;
  domain: string;
}

function lookup(doc: ConfigFile | undefined, dotted: string): unknown {
  let node: unknown = doc;
  for (const part of dotted.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function assign(doc: Record<string, unknown>, dotted: string, value: string): void {
  const parts = dotted.split('.');
  let node = doc;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts.at(-1)!] = value;
}

function asString(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return undefined;
  return String(value);
}

export class AstroConfig {
  private constructor(
    readonly paths: ConfigPaths,
    private globalDoc: ConfigFile | undefined,
    private projectDoc: ConfigFile | undefined,
  ) {}

  static async load(paths: ConfigPaths): Promise<AstroConfig> {
    const [globalDoc, projectDoc] = await Promise.all([
      readConfigFile(paths.globalFile),
      paths.projectFile ? readConfigFile(paths.projectFile) : Promise.resolve(undefined),
    ]);
    return new AstroConfig(paths, globalDoc, projectDoc);
  }

  get hasProjectFile(): boolean {
    return this.projectDoc !== undefined;
  }

  /** A setting: project value when set there, else global, else the default. */
  get(key: string): string | undefined {
    const k = key.toLowerCase();
    const fromProject = asString(lookup(this.projectDoc, k));
    if (PROJECT_ONLY_KEYS.has(k)) return fromProject ?? SETTING_DEFAULTS[k];
    if (fromProject !== undefined && fromProject !== '') return fromProject;
    return asString(lookup(this.globalDoc, k)) ?? SETTING_DEFAULTS[k];
  }

  /** A setting as one file holds it (global: else the default), for `astro config get -g`. */
  getFrom(key: string, scope: 'global' | 'project'): string | undefined {
    const k = key.toLowerCase();
    const value = asString(lookup(scope === 'global' ? this.globalDoc : this.projectDoc, k));
    return value !== undefined && value !== '' ? value : SETTING_DEFAULTS[k];
  }

  getBool(key: string): boolean {
    const value = this.get(key);
    return value !== undefined && ['true', '1', 'yes', 'y', 'on'].includes(value.trim().toLowerCase());
  }

  /** The current context's domain: ASTRO_DOMAIN wins, then the `context` key. */
  currentDomain(envDomain?: string): string | undefined {
    return envDomain ?? asString(this.globalDoc?.context) ?? undefined;
  }

  contexts(): Context[] {
    return Object.entries(this.globalDoc?.contexts ?? {}).flatMap(([key, entry]) =>
      entry ? [{ ...entry, key, domain: entry.domain ?? key.replaceAll('_', '.') }] : [],
    );
  }

  context(domain: string): Context | undefined {
    const key = contextKey(domain);
    return this.contexts().find((c) => c.key === key || c.domain === domain);
  }

  currentContext(envDomain?: string): Context | undefined {
    const domain = this.currentDomain(envDomain);
    return domain === undefined ? undefined : this.context(domain);
  }

  async setSetting(key: string, value: string, scope: 'global' | 'project'): Promise<void> {
    const k = key.toLowerCase();
    if (k === 'context') {
      // Astronomer's CLI writes any value here; naming a context that does not exist would leave astro lost.
      if (scope !== 'global') throw new UsageError('"context" lives in the global config: pass -g.');
      await this.switchContext(value);
      return;
    }
    if (k === 'contexts' || k.startsWith('contexts.')) {
      throw new UsageError(`"${key}" is managed by astro login, logout and context, not by astro config set.`);
    }
    if (!(k in SETTING_DEFAULTS)) {
      throw new UsageError(`Unknown setting "${key}".`, {
        nextStep: `Known settings: ${Object.keys(SETTING_DEFAULTS).sort().join(', ')}`,
      });
    }
    const problem = SETTING_VALIDATORS[k]?.(value);
    if (problem) throw new UsageError(`Invalid value for ${k}: ${problem}.`);
    const file = scope === 'project' ? this.paths.projectFile : this.paths.globalFile;
    if (file === undefined) throw new UsageError('The project config is the global config here; use --global.');
    const written = await updateConfigFile(file, (doc) => assign(doc as Record<string, unknown>, k, value));
    if (scope === 'project') this.projectDoc = written;
    else this.globalDoc = written;
  }

  /** Creates or updates the context for a domain, and optionally makes it current. */
  async saveContext(domain: string, fields: Partial<ContextEntry>, options: { makeCurrent?: boolean } = {}): Promise<Context> {
    const key = contextKey(domain);
    this.globalDoc = await updateConfigFile(this.paths.globalFile, (doc) => {
      const contexts = { ...(doc.contexts ?? {}) };
      const merged: ContextEntry = { ...(contexts[key] ?? {}), domain };
      for (const [field, value] of Object.entries(fields)) {
        if (value === undefined) delete (merged as Record<string, unknown>)[field];
        else (merged as Record<string, unknown>)[field] = value;
      }
      contexts[key] = merged;
      return { ...doc, contexts, ...(options.makeCurrent ? { context: domain } : {}) };
    });
    return this.context(domain)!;
  }

  /**
   * Forgets a context's credentials and, when it is the current context, unsets `context` (Astronomer's CLI
   * unsets it whichever context is logged out of; we keep another current context working).
   */
  async logoutContext(domain: string): Promise<Context> {
    const target = this.context(domain);
    if (!target) throw this.unknownContext(domain);
    this.globalDoc = await updateConfigFile(this.paths.globalFile, (doc) => {
      const contexts = { ...(doc.contexts ?? {}) };
      const entry: ContextEntry = { ...(contexts[target.key] ?? { domain: target.domain }), token: '', refreshtoken: '', user_email: '' };
      delete entry.expiresin;
      contexts[target.key] = entry;
      const current = doc.context === target.domain || doc.context === target.key;
      return { ...doc, contexts, ...(current ? { context: '' } : {}) };
    });
    return this.context(domain)!;
  }

  async switchContext(domain: string): Promise<Context> {
    if (!this.context(domain)) throw this.unknownContext(domain);
    this.globalDoc = await updateConfigFile(this.paths.globalFile, (doc) => {
      if (!doc.contexts?.[contextKey(domain)] && !Object.values(doc.contexts ?? {}).some((c) => c?.domain === domain)) {
        throw this.unknownContext(domain);
      }
      return { ...doc, context: domain };
    });
    return this.context(domain)!;
  }

  async deleteContext(domain: string): Promise<void> {
    const target = this.context(domain);
    if (!target) throw this.unknownContext(domain);
    this.globalDoc = await updateConfigFile(this.paths.globalFile, (doc) => {
      const contexts = { ...(doc.contexts ?? {}) };
      delete contexts[target.key];
      const next: ConfigFile = { ...doc, contexts };
      if (doc.context === target.domain || doc.context === target.key) next.context = '';
      return next;
    });
  }

  private unknownContext(domain: string): UserError {
    const known = this.contexts().map((c) => c.domain);
    return new UserError(`There is no context for "${domain}".`, {
      nextStep: known.length > 0 ? `Known contexts: ${known.join(', ')}. Or run astro login ${domain}.` : `Run astro login ${domain}.`,
    });
  }
}
