/**
 * Domain rules of Astronomer's CLI: which domains are Astro (Cloud), and where their APIs live.
 */

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
export function isCloudDomain(domain: string, localPlatform = 'cloud'): boolean {
  if (CLOUD_DOMAIN.test(domain) || PR_PREVIEW.test(domain)) return true;
  return domain.includes('localhost') && localPlatform === 'cloud';
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
