// Files as step reads and writes them: PEM certificates and their
// fingerprints, password files, and files written with their mode.

import crypto from 'node:crypto';
import fs from 'node:fs';

import { StepFailure } from './layout.mts';

export function sha256Hex(data: string | Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** The first PEM certificate in a text, as DER. */
function firstCertificateDer(pem: string, shown: string): Buffer {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new StepFailure(`error parsing ${shown}: no PEM certificate found`);
  return Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64');
}

/** What `step certificate fingerprint` prints: SHA-256 of the DER, lower-case hex. */
export function fingerprintOf(pem: string, shown = 'certificate'): string {
  return sha256Hex(firstCertificateDer(pem, shown));
}

/** The PEM blocks of the certificates in a file, each ending with a newline. */
export function pemCertificates(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => `${m[0]}\n`);
}

/** A password file as step reads it: trailing line breaks dropped. */
export function readPasswordFile(file: string, shown = file): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StepFailure(`error reading ${shown}: open ${shown}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EISDIR' ? 'is a directory' : 'permission denied'}`);
  }
  const password = text.replace(/[\r\n]+$/, '');
  if (password === '') throw new StepFailure(`error reading ${shown}: the password file is empty`);
  return password;
}

/** Write a file through a temp file and rename, with its mode set before the rename. */
export function writeFileWithMode(file: string, data: string | Buffer, mode: number): void {
  const tmp = `${file}.tmp.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, data, { mode });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

export function mkdirMode(dir: string, mode: number): void {
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode });
    fs.chmodSync(dir, mode);
  }
}
