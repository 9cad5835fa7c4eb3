/**
 * Finalize looks at what was really pushed: the manifest of `<repository>:<tag>` in the registry, and the image
 * config it points to (platform and labels). A deploy whose image is missing or not linux/amd64 is refused.
 */
import { z } from 'zod';

const manifestMediaTypes = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
];

const descriptor = z.object({ mediaType: z.string().optional(), digest: z.string(), size: z.number().optional() });
const imageManifest = z.object({ schemaVersion: z.literal(2), mediaType: z.string().optional(), config: descriptor });
const imageIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptor.extend({ platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).optional() })),
});
const imageConfig = z.object({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
  config: z
    .object({ Labels: z.record(z.string(), z.string()).nullish() })
    .loose()
    .nullish(),
});

export interface ImageFacts {
  digest: string;
  platform: string;
  labels: Record<string, string>;
}

export class ImageRefused extends Error {}

export interface RegistryReader {
  /** Base URL of the registry as the platform reaches it, e.g. http://127.0.0.1:5555 */
  url: string;
  /** A pull token for one repository. */
  pullToken(repository: string): Promise<string>;
}

export async function inspectPushedImage(registry: RegistryReader, repository: string, tag: string): Promise<ImageFacts> {
  const token = await registry.pullToken(repository);
  const get = (path: string, accept: string) =>
    fetch(`${registry.url}/v2/${repository}/${path}`, {
      headers: { authorization: `Bearer ${token}`, accept },
      signal: AbortSignal.timeout(15_000),
    });

  const manifestResponse = await get(`manifests/${encodeURIComponent(tag)}`, manifestMediaTypes.join(', '));
  if (manifestResponse.status === 404) {
    throw new ImageRefused(
      `image ${repository}:${tag} was not found in the registry: push it to the imageRepository and imageTag this deploy returned, then finalize`,
    );
  }
  if (!manifestResponse.ok) {
    throw new Error(`registry answered ${manifestResponse.status} for the manifest of ${repository}:${tag}: ${await manifestResponse.text()}`);
  }
  const digest = manifestResponse.headers.get('docker-content-digest') ?? '';
  const body: unknown = await manifestResponse.json();

  let configDigest: string;
  const index = imageIndex.safeParse(body);
  if (index.success) {
    const platforms = index.data.manifests.map((m) => platformName(m.platform?.os ?? '?', m.platform?.architecture ?? '?', m.platform?.variant));
    const amd64 = index.data.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64');
    if (!amd64) {
      throw new ImageRefused(
        `image ${repository}:${tag} has no linux/amd64 variant (it has ${platforms.join(', ') || 'none'}); Astro runs linux/amd64 images only`,
      );
    }
    const child = await get(`manifests/${amd64.digest}`, manifestMediaTypes.join(', '));
    if (!child.ok) throw new ImageRefused(`image ${repository}:${tag} lists ${amd64.digest} for linux/amd64 but the registry does not have it`);
    const parsed = imageManifest.safeParse(await child.json());
    if (!parsed.success) throw new ImageRefused(`the linux/amd64 manifest of ${repository}:${tag} is not an image manifest`);
    configDigest = parsed.data.config.digest;
  } else {
    const manifest = imageManifest.safeParse(body);
    if (!manifest.success) throw new ImageRefused(`the manifest of ${repository}:${tag} is neither a schema 2 / OCI image manifest nor an index`);
    configDigest = manifest.data.config.digest;
  }

  const configResponse = await get(`blobs/${configDigest}`, 'application/json, */*');
  if (!configResponse.ok) throw new ImageRefused(`the image config ${configDigest} of ${repository}:${tag} is missing from the registry`);
  const config = imageConfig.safeParse(await configResponse.json());
  if (!config.success) throw new ImageRefused(`the image config of ${repository}:${tag} does not name an os and architecture`);
  const platform = platformName(config.data.os, config.data.architecture, config.data.variant);
  if (config.data.os !== 'linux' || config.data.architecture !== 'amd64') {
    throw new ImageRefused(
      `image ${repository}:${tag} is built for ${platform}, but Astro runs linux/amd64 images only; rebuild it with --platform linux/amd64`,
    );
  }
  return { digest, platform, labels: config.data.config?.Labels ?? {} };
}

function platformName(os: string, architecture: string, variant?: string): string {
  return variant ? `${os}/${architecture}/${variant}` : `${os}/${architecture}`;
}
