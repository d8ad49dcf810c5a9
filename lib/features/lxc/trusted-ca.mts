// trusted_ca: the Phoenix root CA in the container's system trust store.
// The certificate comes from the host copy (pulled from the CA container
// when the host has none yet); the bash pushed it from CT 103's
// world-readable, bind-mounted SSL directory. Installed means the
// container holds exactly this certificate, no other phoenix_*.crt, and
// update-ca-certificates has linked it.

import * as pct from '../../pve/pct.mts';
import { changeLog, probe, pushHostFile, readGuestFile, requireRunning, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';
import { ensureRootCaOnHost } from '../../guest/root-ca.mts';

export const FEATURE = 'trusted_ca';

export const GUEST_CA_DIR = '/usr/local/share/ca-certificates';
/** The file name the bash used in every container; kept so existing containers converge. */
export const GUEST_CA_NAME = 'phoenix_root_ca.crt';
/** update-ca-certificates links each local certificate into /etc/ssl/certs as <name>.pem. */
export const TRUST_LINK = '/etc/ssl/certs/phoenix_root_ca.pem';

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  const changes = changeLog(FEATURE, ctid);
  await requireRunning(ctid);
  const root = await ensureRootCaOnHost(context);
  const target = `${GUEST_CA_DIR}/${GUEST_CA_NAME}`;

  const listing = await probe(ctid, ['ls', GUEST_CA_DIR]);
  const stale = listing.stdout.split('\n').filter((name) => /^phoenix_.*\.crt$/.test(name) && name !== GUEST_CA_NAME);
  const current = await readGuestFile(ctid, target);
  const linked = current === root.pem && (await pct.test(ctid, '-e', TRUST_LINK));
  if (current === root.pem && stale.length === 0 && linked) return changes.result();

  if (current !== root.pem) {
    await pushHostFile(ctid, root.file, target, { feature: FEATURE, label: 'copying the root CA', perms: '0644', mkdir: listing.code !== 0 });
    changes.add(`${current === undefined ? 'added' : 'replaced'} ${target} (sha256 ${root.fingerprint})`);
  }
  if (stale.length > 0) changes.add(`removed ${stale.join(' ')}`);
  await runGuestScript(ctid, 'trusted_ca.sh', [GUEST_CA_NAME], { feature: FEATURE, label: 'updating the trust store' });
  changes.add('ran update-ca-certificates');
  return changes.result();
}
