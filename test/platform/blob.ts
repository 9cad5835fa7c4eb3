/**
 * The platform's own (shared-key) access to Azurite: containers per Deployment, write-only SAS URLs for the CLI,
 * snapshots that stand in for blob versions, and reading a snapshot back at finalize.
 */
import { BlobSASPermissions, BlobServiceClient, generateBlobSASQueryParameters, SASProtocol, StorageSharedKeyCredential } from '@azure/storage-blob';

/** Azurite's well-known development account (public, documented by Microsoft). */
export const devAccountName = 'devstoreaccount1';
export const devAccountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const dagBundleBlobName = 'dags.tar.gz';

export class BlobStore {
  private readonly credential = new StorageSharedKeyCredential(devAccountName, devAccountKey);
  private readonly service: BlobServiceClient;

  constructor(
    /** Azurite itself, e.g. http://127.0.0.1:10000 */
    readonly azuriteUrl: string,
    /** What clients are given: the platform's proxy in front of Azurite. */
    readonly publicUrl: string,
  ) {
    this.service = new BlobServiceClient(`${azuriteUrl}/${devAccountName}`, this.credential);
  }

  async ensureContainer(name: string): Promise<void> {
    await this.service.getContainerClient(name).createIfNotExists();
  }

  /** A write-only (create + write, no read) SAS URL for one blob, through the proxy. */
  uploadUrl(container: string, blob: string, expiresAt: Date, now: Date): string {
    const query = generateBlobSASQueryParameters(
      {
        containerName: container,
        blobName: blob,
        permissions: BlobSASPermissions.parse('cw'),
        // A little back-dating absorbs clock differences between client and emulator.
        startsOn: new Date(now.getTime() - 5 * 60_000),
        expiresOn: expiresAt,
        protocol: SASProtocol.HttpsAndHttp,
      },
      this.credential,
    ).toString();
    return `${this.publicUrl}/${devAccountName}/${container}/${encodeURIComponent(blob)}?${query}`;
  }

  async snapshot(container: string, blob: string): Promise<string> {
    const result = await this.service.getContainerClient(container).getBlobClient(blob).createSnapshot();
    if (!result.snapshot) throw new Error(`Azurite returned no snapshot time for ${container}/${blob}`);
    return result.snapshot;
  }

  /** Reads one snapshot; `undefined` when it does not exist. */
  async readSnapshot(container: string, blob: string, snapshot: string, limitBytes: number): Promise<Buffer | undefined> {
    const client = this.service.getContainerClient(container).getBlobClient(blob).withSnapshot(snapshot);
    try {
      const props = await client.getProperties();
      if ((props.contentLength ?? 0) > limitBytes) throw new Error(`bundle is larger than ${limitBytes} bytes`);
      return await client.downloadToBuffer();
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (status === 404 || status === 400) return undefined;
      throw error;
    }
  }
}
