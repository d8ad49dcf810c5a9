// The JWK provisioner: an EC key whose private half is a real PBES2 JWE
// sealed with the provisioner password, so a wrong password is refused by
// decryption, not by comparing strings.

import crypto from 'node:crypto';

import type { Provisioner } from './layout.mts';
import { newEcKey } from './openssl.mts';

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** PBES2 iterations of the provisioner key's JWE (what step used before raising it to 600000). */
const PBES2_ITERATIONS = 100_000;

interface Jwk {
  kty: string;
  crv: string;
  x: string;
  y: string;
  d?: string;
}

function thumbprint(jwk: Jwk): string {
  return b64url(crypto.createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest());
}

const KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

function pbes2Key(password: string, alg: string, p2s: Buffer, p2c: number): Buffer {
  const salt = Buffer.concat([Buffer.from(alg), Buffer.from([0]), p2s]);
  return crypto.pbkdf2Sync(password, salt, p2c, 16, 'sha256');
}

/** A compact JWE (PBES2-HS256+A128KW, A256GCM) of `plaintext`, sealed with `password`. */
export function sealWithPassword(plaintext: string, password: string): string {
  const alg = 'PBES2-HS256+A128KW';
  const p2s = crypto.randomBytes(16);
  const header = b64url(JSON.stringify({ alg, cty: 'jwk+json', enc: 'A256GCM', p2c: PBES2_ITERATIONS, p2s: b64url(p2s) }));
  const cek = crypto.randomBytes(32);
  const wrap = crypto.createCipheriv('id-aes128-wrap', pbes2Key(password, alg, p2s, PBES2_ITERATIONS), KW_IV);
  const wrapped = Buffer.concat([wrap.update(cek), wrap.final()]);
  const iv = crypto.randomBytes(12);
  const gcm = crypto.createCipheriv('aes-256-gcm', cek, iv);
  gcm.setAAD(Buffer.from(header));
  const ciphertext = Buffer.concat([gcm.update(plaintext, 'utf8'), gcm.final()]);
  return [header, b64url(wrapped), b64url(iv), b64url(ciphertext), b64url(gcm.getAuthTag())].join('.');
}

/** Open a JWE made by sealWithPassword; undefined when the password is wrong (or the JWE damaged). */
export function openWithPassword(jwe: string, password: string): string | undefined {
  try {
    const [header, wrapped, iv, ciphertext, tag] = jwe.split('.') as [string, string, string, string, string];
    const h = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg: string; p2c: number; p2s: string };
    const unwrap = crypto.createDecipheriv('id-aes128-wrap', pbes2Key(password, h.alg, Buffer.from(h.p2s, 'base64url'), h.p2c), KW_IV);
    const cek = Buffer.concat([unwrap.update(Buffer.from(wrapped, 'base64url')), unwrap.final()]);
    const gcm = crypto.createDecipheriv('aes-256-gcm', cek, Buffer.from(iv, 'base64url'));
    gcm.setAAD(Buffer.from(header));
    gcm.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([gcm.update(Buffer.from(ciphertext, 'base64url')), gcm.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

export function jwkProvisioner(name: string, password: string): Provisioner {
  const jwk = newEcKey().export({ format: 'jwk' }) as unknown as Jwk;
  const kid = thumbprint(jwk);
  const publicKey = { use: 'sig', kty: jwk.kty, kid, crv: jwk.crv, alg: 'ES256', x: jwk.x, y: jwk.y };
  const encryptedKey = sealWithPassword(JSON.stringify({ ...publicKey, d: jwk.d }), password);
  return { type: 'JWK', name, key: publicKey, encryptedKey };
}
