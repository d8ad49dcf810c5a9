// What was last delivered to each entry's guest. A renewed certificate is
// "delivered" once it is in the guest, its post-renewal command has run and
// its service has reloaded. The record (one small JSON file on the host)
// lets a later run finish a delivery that an earlier one could not: the
// guest was stopped, `--generate-only` was given (vm-manager create), a
// push failed. The bash only ever pushed right after a renewal, so such a
// certificate never reached its guest until the next renewal.

import path from 'node:path';
import { createHash } from 'node:crypto';
import { writeFileAtomic } from '../core/fs.mts';
import type { CertificatePlan } from './manifest.mts';
import { readJsonIfPresent } from '../core/json-file.mts';

export const STATE_RELATIVE = 'var/lib/phoenix/certificates/delivered.json';

export interface DeliveryRecord {
  /** Digest of everything a delivery depends on (see deliveryDigest). */
  digest: string;
  at: string;
}

export type DeliveryState = Record<string, DeliveryRecord>;

export function statePath(hostRoot: string): string {
  return path.join(hostRoot, STATE_RELATIVE);
}

export function readDeliveryState(hostRoot: string): DeliveryState {
  // Missing or damaged: every entry is delivered again once, which is safe.
  const parsed = readJsonIfPresent(statePath(hostRoot));
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as DeliveryState) : {};
}

export function writeDeliveryState(hostRoot: string, state: DeliveryState): void {
  const sorted: DeliveryState = {};
  for (const key of Object.keys(state).sort()) sorted[key] = state[key] as DeliveryRecord;
  writeFileAtomic(statePath(hostRoot), `${JSON.stringify(sorted, null, 2)}\n`, { mode: 0o600, dirMode: 0o700 });
}

/** The record key of an entry: its certificate file as the manifest names it. */
export function stateKey(plan: CertificatePlan): string {
  return plan.entry.cert_path;
}

/**
 * A digest of the certificate, the root CA (when it is copied) and where
 * and how the entry is delivered: any change means deliver again.
 */
export function deliveryDigest(plan: CertificatePlan, certPem: string, rootPem: string | undefined): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ guest: plan.guest ?? null, push: plan.push, post: plan.post?.argv ?? null }));
  hash.update('\0');
  hash.update(certPem);
  if (plan.push.ca !== undefined) {
    hash.update('\0');
    hash.update(rootPem ?? '');
  }
  return hash.digest('hex');
}
