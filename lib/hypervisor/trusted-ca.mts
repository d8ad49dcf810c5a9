// The Phoenix root CA in the host's own trust store, so host tools (curl,
// step, the renewal manager, Proxmox itself) trust the internal services.
// The certificate comes from the host copy (`step_ca.root_ca_file`, pulled
// from the CA container when the host has none yet) and is installed as
// /usr/local/share/ca-certificates/phoenix_root_ca.crt, the name the
// containers and VMs use too. update-ca-certificates runs only when that
// changed or the trust link is missing: a second run does nothing.

import fs from 'node:fs';
import type { FeatureContext } from '../guest/container.mts';
import { GUEST_CA_DIR, GUEST_CA_NAME, TRUST_LINK } from '../features/lxc/trusted-ca.mts';
import { removeFile, writeFileAtomic } from '../core/fs.mts';
import { run } from '../core/runner.mts';
import { success } from '../core/log.mts';
import { ensureHostRootCa, hostFile } from './host.mts';

export const HOST_CA_FILE = `${GUEST_CA_DIR}/${GUEST_CA_NAME}`;
/** The bash's name for the same certificate on the host; removed so a replaced root stops being trusted. */
export const LEGACY_HOST_CA_FILE = `${GUEST_CA_DIR}/phoenix_internal_root_ca.crt`;

export interface TrustResult {
  outcome: 'unchanged' | 'changed';
  fingerprint: string;
  changes: string[];
}

export async function installHostTrustedCa(context: FeatureContext): Promise<TrustResult> {
  const root = await ensureHostRootCa(context);
  const changes: string[] = [];
  const target = hostFile(context.options, HOST_CA_FILE);
  const written = writeFileAtomic(target, root.pem, { mode: 0o644, dirMode: 0o755 });
  if (written !== 'unchanged') changes.push(`${written === 'created' ? 'installed' : 'replaced'} ${HOST_CA_FILE} (sha256 ${root.fingerprint})`);
  if (removeFile(hostFile(context.options, LEGACY_HOST_CA_FILE)) === 'removed') changes.push(`removed ${LEGACY_HOST_CA_FILE}`);
  const linked = linkExists(hostFile(context.options, TRUST_LINK));
  if (changes.length > 0 || !linked) {
    await run({ cmd: 'update-ca-certificates', args: [] });
    changes.push('ran update-ca-certificates');
  }
  success(changes.length === 0 ? `the host already trusts the Phoenix root CA (sha256 ${root.fingerprint})` : `the host trusts the Phoenix root CA: ${changes.join('; ')}`);
  return { outcome: changes.length === 0 ? 'unchanged' : 'changed', fingerprint: root.fingerprint, changes };
}

/** update-ca-certificates' link in /etc/ssl/certs (a symlink to the installed file). */
function linkExists(link: string): boolean {
  try {
    fs.lstatSync(link);
    return true;
  } catch {
    return false;
  }
}
