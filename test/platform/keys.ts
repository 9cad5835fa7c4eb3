/**
 * The platform's signing identity: one RSA key and a self-signed certificate, made once per state directory with
 * the `openssl` CLI and reused across restarts (so tokens minted before a restart stay valid). The registry trusts
 * the certificate through `rootcertbundle`; registry tokens carry it in their `x5c` header.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';

export interface SigningKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Key id used in JWT headers and the JWKS document. */
  kid: string;
  publicJwk: JWK;
  certPath: string;
  /** Base64 (not url-safe) DER of the certificate, as `x5c` wants it. */
  certDerBase64: string;
}

export async function ensureSigningKeys(dir: string, opensslBin = 'openssl'): Promise<SigningKeys> {
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, 'signing-key.pem');
  const certPath = join(dir, 'signing-cert.pem');
  if (!existsSync(keyPath) || !existsSync(certPath)) createKeyPair(dir, keyPath, certPath, opensslBin);

  const privateKey = createPrivateKey(readFileSync(keyPath));
  const cert = new X509Certificate(readFileSync(certPath));
  const publicKey = createPublicKey(privateKey);
  if (!cert.checkPrivateKey(privateKey)) {
    throw new Error(`${certPath} does not match ${keyPath}; delete both to have them recreated`);
  }
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    privateKey,
    publicKey,
    kid,
    publicJwk: { ...publicJwk, kid, alg: 'RS256', use: 'sig' },
    certPath,
    certDerBase64: cert.raw.toString('base64'),
  };
}

function createKeyPair(dir: string, keyPath: string, certPath: string, opensslBin: string): void {
  const tmpKey = join(dir, `.signing-key.${process.pid}.pem`);
  const tmpCert = join(dir, `.signing-cert.${process.pid}.pem`);
  try {
    execFileSync(
      opensslBin,
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '3650', '-subj', '/CN=astro-local-platform', '-keyout', tmpKey, '-out', tmpCert],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (error) {
    const err = error as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') {
      throw new Error(`the local platform needs the openssl CLI to create its signing certificate; install it (apt-get install openssl)`);
    }
    throw new Error(`openssl could not create the signing certificate: ${err.stderr?.toString().trim() ?? err.message}`);
  }
  renameSync(tmpKey, keyPath);
  renameSync(tmpCert, certPath);
}

export interface TlsIdentity {
  key: Buffer;
  cert: Buffer;
  certPath: string;
}

/**
 * A self-signed TLS certificate for `localhost` / 127.0.0.1, made once per state directory. Astronomer's CLI prints the
 * Deployment View link as `https://localhost:5000/…` after an image deploy, so that port answers TLS too.
 */
export function ensureTlsIdentity(dir: string, opensslBin = 'openssl'): TlsIdentity {
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, 'tls-key.pem');
  const certPath = join(dir, 'tls-cert.pem');
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    const tmpKey = join(dir, `.tls-key.${process.pid}.pem`);
    const tmpCert = join(dir, `.tls-cert.${process.pid}.pem`);
    try {
      execFileSync(
        opensslBin,
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-sha256',
          '-days',
          '3650',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost,IP:127.0.0.1',
          '-keyout',
          tmpKey,
          '-out',
          tmpCert,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (error) {
      const err = error as NodeJS.ErrnoException & { stderr?: Buffer };
      throw new Error(`openssl could not create the TLS certificate: ${err.stderr?.toString().trim() ?? err.message}`);
    }
    renameSync(tmpKey, keyPath);
    renameSync(tmpCert, certPath);
  }
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), certPath };
}
