/**
 * The `auth` option of the benchmark peers of systems `intracom-signed`
 * (every frame signed and verified, Ed25519) and `intracom-sealed` (signed
 * and AES-256-GCM encrypted): the same keys in every peer process, made from
 * fixed seeds so that the processes need not exchange them.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { AuthOptions } from '../../../src/index';

/** The services of the benchmark peers. */
const SERVICES = ['bench-caller', 'bench-rpc', 'bench-rpc-signed', 'bench-rpc-sealed', 'bench-publisher', 'bench-subscriber'];

/** The RPC service a system's responders serve: one per system, so that a caller never reaches another system's responder through the shared registry. */
export function benchRpcService(system: string | undefined): string {
  return system === 'intracom-signed' ? 'bench-rpc-signed' : system === 'intracom-sealed' ? 'bench-rpc-sealed' : 'bench-rpc';
}
/** DER of a PKCS#8 Ed25519 private key, up to its 32-byte seed (RFC 8410). */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

function privateKeyOf(service: string): KeyObject {
  const seed = createHash('sha256').update(`intracom bench ${service}`).digest();
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
}

/** True for the systems that run intracom's own client (with or without auth). */
export function isIntracom(system: string | undefined): boolean {
  return system === 'intracom' || system === 'intracom-signed' || system === 'intracom-sealed';
}

/** The auth option of `service` under `system`; undefined for plain intracom. */
export function benchAuth(system: string | undefined, service: string): AuthOptions | undefined {
  if (system !== 'intracom-signed' && system !== 'intracom-sealed') return undefined;
  const publicKeys = Object.fromEntries(SERVICES.map((name) => [name, { k1: createPublicKey(privateKeyOf(name)) }]));
  const auth: AuthOptions = { keyId: 'k1', privateKey: privateKeyOf(service), publicKeys };
  if (system === 'intracom-sealed') auth.encryption = { keyId: 'x1', keys: { x1: createHash('sha256').update('intracom bench encryption').digest() } };
  return auth;
}
