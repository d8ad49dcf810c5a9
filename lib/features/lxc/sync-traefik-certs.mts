// sync_traefik_certs: put the files Traefik's TLS needs into its container
// at sync time: the root CA as /etc/traefik/certs/ca.pem and every
// certificate the certificate manifest issues for this container, then
// restart Traefik if anything changed (or it is not running).
//
// The bash looked for the certificates in a directory nothing writes to
// (…/102/traefik/certs) and ran `chmod 600 …/*.pem` with the glob
// expanded on the host, so it could never succeed. Here the certificates are
// the certificate manifest's own paths; one the container already sees
// through a bind mount is not copied again (only its key's mode is checked),
// any other is pushed with its mode (0644 certificate, 0600 key). Keys are
// compared by SHA-256, so no key content is read back out of the container.

import fs from 'node:fs';
import path from 'node:path';
import { PhoenixError } from '../../core/errors.mts';
import { info, warn } from '../../core/log.mts';
import { isDryRun } from '../../core/context.mts';
import type { MountPoint } from '../../config/types.mts';
import { applyPlan, once, type FeaturePlan } from '../../guest/feature-plan.mts';
import { serviceProbe } from '../../guest/feature-container.mts';
import { guestConfig, probe, pushHostFile, readGuestFile, requireRunning, runGuestCommand, type FeatureContext, type FeatureResult } from '../../guest/container.mts';
import { ensureRootCaOnHost } from '../../guest/root-ca.mts';
import { CA_PEM, CERTS_DIR } from './traefik.mts';

export const FEATURE = 'sync_traefik_certs';

interface SyncFile {
  host: string;
  /** Where the container sees it: through a bind mount, or after a push. */
  guest: string;
  mounted: boolean;
  key: boolean;
}

/** The container path of a host file that lies in one of the CT's bind mounts. */
export function mountedPath(mounts: readonly MountPoint[] | undefined, hostFile: string): string | undefined {
  for (const m of mounts ?? []) {
    const base = m.host_path.replace(/\/+$/, '');
    if (hostFile.startsWith(`${base}/`)) return path.posix.join(m.container_path, hostFile.slice(base.length + 1));
  }
  return undefined;
}

/** The certificate manifest's files for this container. */
export function certificateFiles(context: FeatureContext, ctid: string): SyncFile[] {
  const mounts = guestConfig(context, ctid)?.mount_points;
  const files: SyncFile[] = [];
  for (const entry of context.config.certificates) {
    if ((entry.guest_type ?? 'lxc') !== 'lxc' || String(entry.guest_id) !== ctid) continue;
    for (const [host, key] of [[entry.cert_path, false], [entry.key_path, true]] as const) {
      const mapped = mountedPath(mounts, host);
      files.push({ host, guest: mapped ?? path.posix.join(CERTS_DIR, path.basename(host)), mounted: mapped !== undefined, key });
    }
  }
  return files;
}

export async function plan(ctid: string, context: FeatureContext): Promise<FeaturePlan> {
  await requireRunning(ctid);
  const root = await ensureRootCaOnHost(context);
  const files = certificateFiles(context, ctid);
  if (files.length === 0) warn(`${FEATURE}: the certificate manifest issues nothing for CT ${ctid}; only the root CA is synced`);
  const absent = files.filter((f) => !fs.existsSync(f.host)).map((f) => f.host);
  if (absent.length > 0) {
    throw new PhoenixError(`${FEATURE}: missing on the host: ${absent.join(', ')}`, { hint: "run 'phoenix sync all' (the certificate manager issues them)" });
  }
  const mountedKeys = files.filter((f) => f.mounted && f.key);
  const loose = once(async () => mountedKeys.filter((f) => (fs.statSync(f.host).mode & 0o777) !== 0o600));
  // Everything is looked at first, so the certificates directory is created once at most.
  const pushes = once(async () => {
    const due: Array<{ file: SyncFile; why: 'wrote' | 'updated' }> = [];
    const caCurrent = await readGuestFile(ctid, CA_PEM);
    if (caCurrent !== root.pem) due.push({ file: { host: root.file, guest: CA_PEM, mounted: false, key: false }, why: caCurrent === undefined ? 'wrote' : 'updated' });
    for (const file of files.filter((f) => !f.mounted)) {
      const state = await pushedState(ctid, file);
      if (state !== 'same') due.push({ file, why: state === 'absent' ? 'wrote' : 'updated' });
    }
    return due;
  });
  const service = serviceProbe(ctid, 'traefik');
  return {
    feature: FEATURE,
    kind: 'lxc',
    guest: ctid,
    steps: [
      {
        kind: 'host',
        id: 'mounted-keys',
        // A key the container reads through a bind mount is the host file itself: it must be 0600 there.
        title: 'keep the bind-mounted keys at mode 0600 on the host',
        check: async () => (await loose()).length === 0,
        apply: async () => {
          const lines: string[] = [];
          for (const file of await loose()) {
            const mode = fs.statSync(file.host).mode & 0o777;
            if (isDryRun()) info(`DRY-RUN: would chmod 0600 ${file.host} (now ${mode.toString(8)})`);
            else fs.chmodSync(file.host, 0o600);
            lines.push(`set ${file.host} to mode 0600 (was ${mode.toString(8)})`);
          }
          return lines;
        },
      },
      {
        kind: 'host',
        id: 'certificates',
        title: `copy the root CA and the certificates into ${CERTS_DIR}`,
        check: async () => (await pushes()).length === 0,
        apply: async () => {
          await runGuestCommand(ctid, ['mkdir', '-p', CERTS_DIR], { feature: FEATURE, label: `creating ${CERTS_DIR}` });
          const lines: string[] = [];
          for (const { file, why } of await pushes()) {
            await pushHostFile(ctid, file.host, file.guest, { feature: FEATURE, label: `copying ${path.basename(file.host)}`, perms: file.key ? '0600' : '0644' });
            lines.push(`${why} ${file.guest}`);
          }
          return lines;
        },
      },
      {
        kind: 'host',
        id: 'restart',
        title: 'restart traefik',
        check: async () => (await service()).active,
        after: ['mounted-keys', 'certificates'],
        apply: async () => {
          const active = (await service()).active;
          await runGuestCommand(ctid, ['systemctl', 'restart', 'traefik'], { feature: FEATURE, label: 'restarting traefik' });
          return [active ? 'restarted traefik' : 'started traefik'];
        },
      },
    ],
  };
}

export async function install(ctid: string, context: FeatureContext): Promise<FeatureResult> {
  return applyPlan(await plan(ctid, context), context);
}

/** Whether the container's copy of a pushed file matches the host's (keys by SHA-256 only). */
async function pushedState(ctid: string, file: SyncFile): Promise<'same' | 'different' | 'absent'> {
  const content = fs.readFileSync(file.host);
  if (file.key) {
    const { createHash } = await import('node:crypto');
    const result = await probe(ctid, ['sha256sum', file.guest]);
    const hash = result.code === 0 ? /^([0-9a-f]{64})\b/.exec(result.stdout)?.[1] : undefined;
    if (hash === undefined) return 'absent';
    return hash === createHash('sha256').update(content).digest('hex') ? 'same' : 'different';
  }
  const text = await readGuestFile(ctid, file.guest);
  if (text === undefined) return 'absent';
  return text === content.toString('utf8') ? 'same' : 'different';
}
