// Leaf certificates, signed with the CA's intermediate.

import fs from 'node:fs';
import path from 'node:path';

import { pemCertificates, readPasswordFile } from './files.mts';
import { LAYOUT, StepFailure } from './layout.mts';
import { newEcKey, openssl, OPENSSL_CONFIG, opensslTime, subjectArg, withScratch } from './openssl.mts';

export type SanKind = 'DNS' | 'IP' | 'email' | 'URI';

/** How a SAN value lands in the certificate: by its syntax, as step decides. */
export function sanKind(value: string): SanKind {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(value) || (value.includes(':') && /^[0-9a-fA-F:.]+$/.test(value))) return 'IP';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return 'URI';
  if (value.includes('@')) return 'email';
  return 'DNS';
}

export interface LeafRequest {
  subject: string;
  sans: string[];
  notBefore: Date;
  notAfter: Date;
}

export interface Leaf {
  /** Leaf then intermediate, PEM. */
  bundle: string;
  /** SEC1 PEM, unencrypted (what `step ca certificate` writes). */
  keyPem: string;
}

/**
 * Sign a leaf with the CA's intermediate, as the running step-ca would: it
 * unlocks its key with $STEPPATH/ca_password.txt (the file its unit passes).
 */
export function issueLeaf(dir: string, request: LeafRequest): Leaf {
  const passwordFile = path.join(dir, LAYOUT.caPassword);
  if (!fs.existsSync(passwordFile)) throw new StepFailure(`the CA is not running: step-ca cannot start without ${LAYOUT.caPassword}`);
  const caPassword = readPasswordFile(passwordFile, LAYOUT.caPassword);
  const sans = request.sans.length > 0 ? request.sans : [request.subject];
  for (const san of sans) if (/[,\s]/.test(san) || san === '') throw new StepFailure(`invalid SAN '${san}'`);
  const key = newEcKey();
  const keyPem = key.export({ type: 'sec1', format: 'pem' }) as string;
  const intermediatePem = fs.readFileSync(path.join(dir, LAYOUT.intermediateCert), 'utf8');
  const leafPem = withScratch((scratch) => {
    const sanLines = sans.map((san, i) => `${sanKind(san)}.${i + 1} = ${san}`).join('\n');
    fs.writeFileSync(path.join(scratch, 'openssl.cnf'), `${OPENSSL_CONFIG}[sans]\n${sanLines}\n`);
    fs.writeFileSync(path.join(scratch, 'index.txt'), '');
    fs.mkdirSync(path.join(scratch, 'issued'));
    fs.writeFileSync(path.join(scratch, 'leaf.key'), keyPem, { mode: 0o600 });
    const subject = subjectArg([['CN', request.subject]]);
    openssl(['req', '-new', '-config', 'openssl.cnf', '-key', 'leaf.key', '-subj', subject, '-out', 'leaf.csr'], scratch);
    openssl(
      [
        'ca', '-batch', '-config', 'openssl.cnf', '-in', 'leaf.csr', '-out', 'leaf.crt', '-notext', '-subj', subject,
        '-cert', path.join(dir, LAYOUT.intermediateCert), '-keyfile', path.join(dir, LAYOUT.intermediateKey), '-passin', 'stdin',
        '-startdate', opensslTime(request.notBefore), '-enddate', opensslTime(request.notAfter), '-extensions', 'leaf',
      ],
      scratch,
      caPassword,
    );
    return fs.readFileSync(path.join(scratch, 'leaf.crt'), 'utf8');
  });
  return { bundle: `${pemCertificates(leafPem)[0]}${pemCertificates(intermediatePem)[0]}`, keyPem };
}
