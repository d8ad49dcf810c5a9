// openssl, spawned only to make certificates (root, intermediate, leaves),
// and the EC keys it signs with (node:crypto).

import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import { StepFailure } from './layout.mts';

const require = createRequire(import.meta.url);

/** Escape a value for openssl's -subj syntax (/K=V/…). */
function subjectValue(value: string): string {
  if (/[\0\r\n]/.test(value)) throw new StepFailure(`invalid subject '${value}'`);
  return value.replace(/[\\/+=,]/g, (c) => `\\${c}`);
}

export function subjectArg(fields: ReadonlyArray<[string, string]>): string {
  return fields.map(([k, v]) => `/${k}=${subjectValue(v)}`).join('');
}

/** Run openssl in `cwd` with the password (if any) on stdin; throw its stderr on failure. */
export function openssl(args: string[], cwd: string, password?: string): void {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const result = spawnSync('openssl', args, { cwd, input: password === undefined ? '' : `${password}\n`, encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw new StepFailure(`openssl: ${result.error.message}`);
  if (result.status !== 0) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join('; ');
    throw new StepFailure(`openssl ${args[0]} failed (exit ${result.status}): ${detail}`);
  }
}

export const OPENSSL_CONFIG = `# made by the Phoenix simulator for one signing
[req]
distinguished_name = dn
[dn]
[ca]
default_ca = sim
[sim]
database = ./index.txt
new_certs_dir = ./issued
rand_serial = yes
unique_subject = no
default_md = sha256
policy = anything
copy_extensions = none
[anything]
commonName = optional
organizationName = optional
[root]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf]
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = @sans
`;

/** A private scratch directory for one openssl job, removed afterwards. */
export function withScratch<T>(fn: (dir: string) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simhost-step-'));
  try {
    return fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function newEcKey(): crypto.KeyObject {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

/** An EC key as step writes a CA key: SEC1 PEM, encrypted (Proc-Type/DEK-Info) with the password. */
export function encryptedKeyPem(key: crypto.KeyObject, password: string): string {
  return key.export({ type: 'sec1', format: 'pem', cipher: 'aes-256-cbc', passphrase: password }) as string;
}

/** asn1 time for openssl ca -startdate/-enddate. */
export function opensslTime(date: Date): string {
  const iso = date.toISOString();
  const year = date.getUTCFullYear();
  const digits = `${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return year >= 1950 && year < 2050 ? `${String(year).slice(2)}${digits}` : `${year}${digits}`;
}
