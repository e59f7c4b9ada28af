/**
 * Certificates made at test time with `openssl`, for a private redis-server
 * that speaks TLS (and, optionally, requires client certificates).
 *
 * Two certificate authorities are made: `ca` signs the server's and the
 * client's certificates; `untrustedCa` signs nothing the server knows, so a
 * client that trusts only it must fail to connect.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM files of one test PKI, and their contents. */
export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly untrustedCaFile: string;
  /** Contents, for ioredis `tls` options. */
  readonly ca: Buffer;
  readonly clientCert: Buffer;
  readonly clientKey: Buffer;
  readonly untrustedCa: Buffer;
  /** Removes the files. */
  remove(): void;
}

/** Whether `openssl` is on PATH. */
export function hasOpenssl(): boolean {
  return spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`]);
}

function makeSigned(dir: string, name: string, extensions: string): void {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
}

/** Makes a CA, a server certificate for 127.0.0.1/localhost, a client certificate and an unrelated CA. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'intracom-pki-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'untrusted-ca');
  makeSigned(dir, 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  makeSigned(dir, 'client', 'extendedKeyUsage=clientAuth\n');
  const file = (name: string) => join(dir, name);
  return {
    dir,
    caFile: file('ca.crt'),
    serverCertFile: file('server.crt'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.crt'),
    clientKeyFile: file('client.key'),
    untrustedCaFile: file('untrusted-ca.crt'),
    ca: readFileSync(file('ca.crt')),
    clientCert: readFileSync(file('client.crt')),
    clientKey: readFileSync(file('client.key')),
    untrustedCa: readFileSync(file('untrusted-ca.crt')),
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `redis-server` arguments for a TLS-only server on `tlsPort` (the plain port
 * closed): `clientCerts` says whether a client certificate is required.
 */
export function tlsServerArgs(pki: TestPki, tlsPort: number, clientCerts: 'yes' | 'no' | 'optional'): string[] {
  return [
    '--tls-port', String(tlsPort),
    '--tls-cert-file', pki.serverCertFile,
    '--tls-key-file', pki.serverKeyFile,
    '--tls-ca-cert-file', pki.caFile,
    '--tls-auth-clients', clientCerts,
  ];
}
