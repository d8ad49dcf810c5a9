// trusted_ca: the Phoenix root CA in the container's system trust store.
// The certificate comes from the host copy (pulled from the CA container
// when the host has none yet); the bash pushed it from CT 103's
// world-readable, bind-mounted SSL directory. Installed means the
// container holds exactly this certificate, no other phoenix_*.crt, and
// update-ca-certificates has linked it.

import * as pct from '../../pve/pct.mts';
import { applyPlan, once, type FeaturePlan } from '../../guest/feature-plan.mts';
import { probe, pushHostFile, readGuestFile, requireRunning, runGuestScript, type FeatureContext, type FeatureResult } from '../../guest/container.mts';
import { ensureRootCaOnHost } from '../../guest/root-ca.mts';

export const FEATURE = 'trusted_ca';

export const GUEST_CA_DIR = '/usr/local/share/ca-certificates';
/** The file name the bash used in every container; kept so existing containers converge. */
export const GUEST_CA_NAME = 'phoenix_root_ca.crt';
/** update-ca-certificates links each local certificate into /etc/ssl/certs as <name>.pem. */
export const TRUST_LINK = '/etc/ssl/certs/phoenix_root_ca.pem';

export async function plan(ctid: string, context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  const root = await ensureRootCaOnHost(context);
  const target = `${GUEST_CA_DIR}/${GUEST_CA_NAME}`;
  const current = once(() => readGuestFile(ctid, target));
  const listing = once(() => probe(ctid, ['ls', GUEST_CA_DIR]));
  const stale = async () => (await listing()).stdout.split('\n').filter((name) => /^phoenix_.*\.crt$/.test(name) && name !== GUEST_CA_NAME);
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      {
        kind: 'host',
        id: 'root-ca',
        title: `install the root CA (sha256 ${root.fingerprint}) as ${target}`,
        check: async () => (await current()) === root.pem,
        apply: async () => {
          const before = await current();
          await pushHostFile(ctid, root.file, target, { feature: FEATURE, label: 'copying the root CA', perms: '0644', mkdir: (await listing()).code !== 0 });
          return [`${before === undefined ? 'added' : 'replaced'} ${target} (sha256 ${root.fingerprint})`];
        },
      },
      {
        kind: 'host',
        id: 'trust-store',
        title: 'update the trust store (other phoenix_*.crt removed)',
        check: async () => (await stale()).length === 0 && (await current()) === root.pem && (await pct.test(ctid, '-e', TRUST_LINK)),
        after: ['root-ca'],
        apply: async () => {
          const removed = await stale();
          await runGuestScript(ctid, 'trusted_ca.sh', [GUEST_CA_NAME], { feature: FEATURE, label: 'updating the trust store' });
          return [...(removed.length > 0 ? [`removed ${removed.join(' ')}`] : []), 'ran update-ca-certificates'];
        },
      },
    ],
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}
