/**
 * Every domain rule in one place, as Astronomer's CLI has them: which platform a domain is (Astro or Software),
 * and where its APIs, registry and UI live.
 */
import { UserError } from '../errors.js';

const CLOUD_DOMAIN = /(?:https:\/\/|^)(?:(pr\d{4,6})\.|)(?:cloud\.|)astronomer(?:-(dev|stage|perf))?\.io(?:\/|)$/;
const PR_PREVIEW = /^(pr\d{4,6})\.astronomer-dev\.io$/;

/** `cloud.astronomer.io` and `https://cloud.astronomer.io/` both mean `astronomer.io`; empty means astronomer.io. */
export function formatDomain(domain: string | undefined): string {
  let d = (domain ?? '').trim();
  if (d === '') return 'astronomer.io';
  if (d.includes('cloud')) {
    d = d.replace('cloud.', '').replace('https://', '');
  }
  return d.replace(/\/+$/, '');
}

export function isLocalDomain(domain: string): boolean {
  return domain === 'localhost';
}

/** Astro (REST API) rather than Astronomer Software (Houston). `localPlatform` is the `local.platform` setting. */
function isCloudDomain(domain: string, localPlatform = 'cloud'): boolean {
  if (CLOUD_DOMAIN.test(domain) || PR_PREVIEW.test(domain)) return true;
  return domain.includes('localhost') && localPlatform === 'cloud';
}

export type PlatformKind = 'astro' | 'software';

/**
 * The one decision between Astro and Software, used by every command. An API token always means Astro (it is
 * an Astro credential whatever the context); no domain yet means Astro, the default of `astro login`.
 */
export function platformOf(domain: string | undefined, settings: { localPlatform?: string; apiToken?: boolean } = {}): PlatformKind {
  if (settings.apiToken || domain === undefined || domain.trim() === '') return 'astro';
  return isCloudDomain(domain, settings.localPlatform) ? 'astro' : 'software';
}

export interface EndpointSettings {
  /** `cloud.api.protocol` (default https). */
  protocol: string;
  /** `local.core` (default http://localhost:8888), used for domain `localhost`. */
  localCore: string;
}

export function restBaseUrl(domain: string, settings: EndpointSettings, version: 'v1' | 'v1alpha1' = 'v1'): string {
  if (isLocalDomain(domain)) return `${settings.localCore.replace(/\/$/, '')}/${version}`;
  const pr = PR_PREVIEW.exec(domain);
  if (pr) return `${settings.protocol}://${pr[1]}.api.astronomer-dev.io/${version}`;
  return `${settings.protocol}://api.${formatDomain(domain)}/${version}`;
}

/** The auth-config endpoint is always https, except for localhost (fixed at port 8888 by Astronomer's CLI). */
export function authConfigUrl(domain: string, settings: EndpointSettings): string {
  const path = 'private/v1alpha1/cli/auth-config';
  if (isLocalDomain(domain)) return `${settings.localCore.replace(/\/$/, '')}/${path}`;
  const pr = PR_PREVIEW.exec(domain);
  if (pr) return `https://${pr[1]}.api.astronomer-dev.io/${path}`;
  return `https://api.${formatDomain(domain)}/${path}`;
}

export interface HoustonSettings {
  /** `cloud.api.protocol` (default https). */
  protocol: string;
  /** `cloud.api.port` (default 443). */
  port: string;
  /** `local.houston`: the Houston URL for the domains `localhost` and `houston`. */
  localHouston: string;
}

/** `<protocol>://houston.<domain>:<port>/v1`; `localhost` and `houston` use the `local.houston` setting. */
export function houstonUrl(domain: string, settings: HoustonSettings): string {
  if (domain === 'localhost' || domain === 'houston') {
    if (!settings.localHouston) {
      throw new UserError(`The setting local.houston is empty, so astro does not know where Houston runs for ${domain}.`, {
        nextStep: 'Set it, e.g. astro config set local.houston http://localhost:8871/v1',
      });
    }
    return settings.localHouston;
  }
  return `${settings.protocol}://houston.${formatDomain(domain)}:${settings.port}/v1`;
}

/** The Software UI, where users fetch an OAuth token to paste: `<protocol>://app.<domain>`. */
export function softwareAppUrl(domain: string, settings: Pick<HoustonSettings, 'protocol'>): string {
  return `${settings.protocol}://app.${formatDomain(domain)}`;
}

/** The registry of Software platforms older than 1.0.0 (newer ones list it per Deployment). */
export function legacySoftwareRegistry(domain: string): string {
  return `registry.${domain}`;
}

/** The Deployment's page in the Astro UI; for `localhost`, the local platform's Deployment View. */
export function deploymentViewUrl(domain: string, workspaceId: string, deploymentId: string): string {
  return isLocalDomain(domain)
    ? `http://localhost:5000/${workspaceId}/deployments/${deploymentId}`
    : `https://cloud.${formatDomain(domain)}/${workspaceId}/deployments/${deploymentId}`;
}
