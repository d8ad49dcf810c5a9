// Issuing one certificate: `step ca certificate` on the host, against the
// CA URL and the host's root CA copy given explicitly (so nothing depends on
// the host's step bootstrap state), with the provisioner password read by
// step from its 0600 file (never in an argument or a log line). step writes
// into a private temporary directory; the result is checked (it parses, its
// key matches, it names the wanted SANs, it chains to the root) and only
// then written over the old files, each atomically with its final mode and
// owner already set: key 0600 (or the manifest's stricter choice), the
// certificate file 0644 holding the leaf and the intermediate.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { run } from '../core/runner.mts';
import { writeFileAtomic } from '../core/fs.mts';
import { PhoenixError } from '../core/errors.mts';
import { CERT_MODE, type CaSettings, type CertificatePlan } from './manifest.mts';
import type { OwnerResolver } from './owners.mts';
import { inspect } from './x509.mts';

/** How long one `step ca certificate` may take. */
export const STEP_TIMEOUT_MS = 120_000;

export interface Issued {
  /** False in a dry-run: step was only printed. */
  written: boolean;
  certPem?: string;
}

/** The step command line for an entry (paths of the temporary files given). */
export function stepArgs(plan: CertificatePlan, ca: CaSettings, crtFile: string, keyFile: string): string[] {
  return [
    'ca',
    'certificate',
    plan.name,
    crtFile,
    keyFile,
    '--provisioner',
    ca.provisioner,
    '--provisioner-password-file',
    ca.passwordFile,
    '--ca-url',
    ca.url,
    '--root',
    ca.rootFile,
    '--not-after',
    plan.validity,
    ...plan.requestSans.flatMap((san) => ['--san', san]),
  ];
}

export async function issueCertificate(plan: CertificatePlan, ca: CaSettings, root: X509Certificate, owners: OwnerResolver): Promise<Issued> {
  const ids = plan.owner ? await owners.resolve(plan.owner) : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-cert-'));
  try {
    fs.chmodSync(dir, 0o700);
    const crt = path.join(dir, 'cert.crt');
    const key = path.join(dir, 'cert.key');
    const result = await run({ cmd: 'step', args: stepArgs(plan, ca, crt, key), timeoutMs: STEP_TIMEOUT_MS, allowFailure: true });
    if (result.skipped) return { written: false };
    if (result.code !== 0) {
      const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' | ');
      throw new PhoenixError(`step ca certificate failed (exit ${result.code})${detail ? `: ${detail}` : ''}`);
    }
    let certPem: string;
    let keyPem: string;
    try {
      certPem = fs.readFileSync(crt, 'utf8');
      keyPem = fs.readFileSync(key, 'utf8');
    } catch (err) {
      throw new PhoenixError(`step ca certificate exited 0 but left no certificate and key: ${(err as Error).message}`);
    }
    const check = inspect(certPem, keyPem, root, { commonName: plan.name, sans: plan.sans, certType: plan.certType, renewBeforeMs: 0 });
    if (check.reasons.length > 0) throw new PhoenixError(`the new certificate is not usable, the old files are kept: ${check.reasons.join('; ')}`);
    const ownership = ids ? { uid: ids.uid, gid: ids.gid } : {};
    // The key first: a reader that picks up the new certificate finds its key already there.
    writeFileAtomic(plan.keyFile, keyPem, { mode: plan.keyMode, dirMode: 0o755, ...ownership });
    writeFileAtomic(plan.certFile, certPem, { mode: CERT_MODE, dirMode: 0o755, ...ownership });
    return { written: true, certPem };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
