// The certificate manifest (etc/certificate-manifest.json) as a plan: one
// CertificatePlan per entry with everything the renewal needs resolved and
// checked before anything changes (host paths under PHOENIX_HOST_ROOT,
// wanted SANs, lifetimes, modes and owners, where copies go in the guest,
// the post-renewal command split into words), plus the CA settings from the
// hypervisor config.

import fs from 'node:fs';
import path from 'node:path';
import type { PhoenixConfig } from '../config/load.mts';
import { ManifestError, type ConfigIssue } from '../config/load.mts';
import { pathIssues } from '../config/paths.mts';
import type { CertificateEntry, LxcConfig, MountPoint } from '../config/types.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { onHost } from '../guest/hostdirs.mts';
import { caUrl, DEFAULT_ROOT_CA_FILE, DEFAULT_STEP_CA_CTID, rootCaFile, STEP_CA_PORT } from '../guest/root-ca.mts';
import { DEFAULT_PROVISIONER_NAME, DEFAULT_PROVISIONER_PASSWORD_FILE } from '../pki/step-ca.mts';
import { PhoenixError } from '../core/errors.mts';
import { splitShellWords, ShellWordsError } from './shell-words.mts';

/** Lifetime of a new certificate when the entry has no `not_after` (the bash's `--not-after 24h`). */
export const DEFAULT_VALIDITY = '24h';
/** Renew when less than this is left, unless the entry has `renew_before` (the bash's 43,200 s). */
export const DEFAULT_RENEW_BEFORE = '12h';
/**
 * Where the bash handed the files to a post-renewal command inside the
 * guest. Kept for entries whose post command names these paths, so upstream
 * commands (`mv /tmp/cert.pem …`) keep working; whatever the command leaves
 * there is removed afterwards.
 */
export const HANDOVER = { cert: '/tmp/cert.pem', key: '/tmp/key.pem', ca: '/tmp/ca.pem' } as const;

export const CERT_MODE = 0o644;
export const DEFAULT_KEY_MODE = 0o600;

export interface CaSettings {
  ctid: string;
  url: string;
  provisioner: string;
  /** Host path of the root CA copy (PHOENIX_HOST_ROOT applied). */
  rootFile: string;
  /** Host path of the provisioner password file (PHOENIX_HOST_ROOT applied). */
  passwordFile: string;
}

export interface OwnerSpec {
  /** As written: `user:group` from the manifest, or `uid:gid` derived from a mount. */
  text: string;
  user: string;
  group: string;
  /** Where it came from, for the log. */
  source: 'manifest' | 'mount';
  /**
   * Set when the files sit in a bind mount of this container: the names are
   * the container's users and groups, and the ids are translated through its
   * id maps to the host ids the files must carry.
   */
  container?: { id: string; ct: LxcConfig; guestKeyPath: string };
}

export interface GuestTarget {
  kind: 'lxc' | 'vm';
  id: string;
}

export interface PushTargets {
  cert?: string;
  key?: string;
  ca?: string;
  /** True when the paths are the /tmp hand-over for the post command (removed afterwards). */
  handover: boolean;
}

export interface CertificatePlan {
  index: number;
  /** JSON pointer of the entry in the manifest. */
  pointer: string;
  entry: CertificateEntry;
  name: string;
  certFile: string;
  keyFile: string;
  /** What the certificate must name (the SANs, or the common name alone). */
  sans: string[];
  /** `--san` values for step (none: step uses the common name). */
  requestSans: string[];
  certType: 'server' | 'client';
  keyMode: number;
  owner?: OwnerSpec;
  validity: string;
  validityMs: number;
  renewBefore: string;
  renewBeforeMs: number;
  guest?: GuestTarget;
  push: PushTargets;
  post?: { text: string; argv: string[] };
}

export interface RenewalModel {
  file: string;
  ca: CaSettings;
  plans: CertificatePlan[];
  warnings: string[];
}

// ---------------------------------------------------------------- durations

const DURATION = /^(?:\d+(?:\.\d+)?(?:h|m|s))+$/;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000 };

/** A Go duration of hours, minutes and seconds (`24h`, `90m`, `1h30m`, `45s`) in ms. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d+)?)(h|m|s)/g)) total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  return total;
}

// ---------------------------------------------------------------- the model

export function caSettings(config: PhoenixConfig, options: PhoenixOptions): CaSettings {
  const hv = fs.existsSync(config.paths.hypervisor) ? config.hypervisor : undefined;
  const stepCa = hv?.step_ca;
  const ctid = stepCa?.ctid ?? DEFAULT_STEP_CA_CTID;
  // As the CA container's own settings have it (lib/pki/step-ca.mts): ca_url, else its DNS name.
  let url = stepCa?.ca_url ?? (stepCa?.dns_name ? `https://${stepCa.dns_name}:${STEP_CA_PORT}` : undefined);
  if (!url) {
    try {
      url = caUrl({ config, options }, ctid);
    } catch (err) {
      throw new PhoenixError(`no CA URL: ${(err as Error).message}`, { hint: 'set step_ca.ca_url in the hypervisor config' });
    }
  }
  return {
    ctid,
    url,
    provisioner: stepCa?.provisioner_name ?? DEFAULT_PROVISIONER_NAME,
    // The same host copy the PKI features keep (pki.mts maps it under the host root).
    rootFile: hv ? rootCaFile({ config, options }) : onHost(options.hostRoot, DEFAULT_ROOT_CA_FILE),
    passwordFile: onHost(options.hostRoot, stepCa?.provisioner_password_file ?? DEFAULT_PROVISIONER_PASSWORD_FILE),
  };
}

/**
 * Every entry resolved and checked. Problems of the manifest itself (bad
 * post commands, a world-writable manifest with commands in it, two entries
 * writing one file) are one ManifestError, raised before anything changes.
 */
export function buildModel(config: PhoenixConfig, options: PhoenixOptions): RenewalModel {
  const file = config.paths.certificates;
  const entries = config.certificates;
  const lxc = fs.existsSync(config.paths.lxc) ? config.lxc.lxc_configs : {};
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [];
  const issue = (pointer: string, message: string) => issues.push({ file, pointer, message });
  const seenFiles = new Map<string, string>();
  // Where the files may go (and the CA files it reads): refused before anything else is looked at.
  const misplaced = pathIssues(config, (f) => fs.existsSync(f), { sections: ['certificates', 'hypervisor'] });
  if (misplaced.length > 0) throw new ManifestError(misplaced, { hint: 'docs/security.md lists where each kind of path may point' });

  const plans = entries.map((entry, index): CertificatePlan => {
    const pointer = `/${index}`;
    const name = entry.common_name;
    for (const [key, value] of [['cert_path', entry.cert_path], ['key_path', entry.key_path]] as const) {
      const normal = path.posix.normalize(value);
      const earlier = seenFiles.get(normal);
      if (earlier !== undefined) issue(`${pointer}/${key}`, `${value} is also written by ${earlier}`);
      else seenFiles.set(normal, `${pointer}/${key}`);
    }

    const validity = entry.not_after ?? DEFAULT_VALIDITY;
    const renewBefore = entry.renew_before ?? DEFAULT_RENEW_BEFORE;
    const validityMs = parseDuration(validity);
    const renewBeforeMs = parseDuration(renewBefore);
    if (validityMs === undefined || validityMs <= 0) issue(`${pointer}/not_after`, `'${validity}' is not a duration such as 24h, 90m or 1h30m`);
    if (renewBeforeMs === undefined) issue(`${pointer}/renew_before`, `'${renewBefore}' is not a duration such as 12h, 30m or 1h30m`);
    if (validityMs !== undefined && renewBeforeMs !== undefined && renewBeforeMs >= validityMs) {
      warnings.push(`${name}: renew_before ${renewBefore} is not shorter than the lifetime ${validity}; it will be renewed on every run`);
    }

    const requestSans = [...(entry.sans ?? [])];
    const sans = requestSans.length > 0 ? requestSans : [name];

    const guest: GuestTarget | undefined =
      entry.guest_id === undefined ? undefined : { kind: entry.guest_type === 'vm' ? 'vm' : 'lxc', id: String(entry.guest_id) };

    let keyMode = DEFAULT_KEY_MODE;
    if (entry.permissions !== undefined) {
      // `permissions` applies to the key (the certificate is always 0644): the
      // owner keeps read-write, the group may read, others get nothing.
      const asked = parseInt(entry.permissions, 8);
      keyMode = (asked & 0o640) | 0o600;
      if (keyMode !== asked) warnings.push(`${name}: permissions ${entry.permissions} is not a private-key mode; the key gets ${keyMode.toString(8)}`);
    }

    const owner = ownerFor(entry, guest, lxc);

    let post: CertificatePlan['post'];
    if (entry.post_renewal_command !== undefined) {
      try {
        const argv = splitShellWords(entry.post_renewal_command);
        if (argv.length === 0) issue(`${pointer}/post_renewal_command`, 'is empty; remove the key instead');
        else post = { text: entry.post_renewal_command, argv };
      } catch (err) {
        if (!(err instanceof ShellWordsError)) throw err;
        issue(`${pointer}/post_renewal_command`, `${err.message}. Phoenix runs it as an argument vector; put shell text in a quoted argument, e.g. pct exec 101 -- sh -c '…'`);
      }
    }

    const explicit = entry.guest_cert_path !== undefined || entry.guest_key_path !== undefined || entry.guest_ca_path !== undefined;
    if (explicit && guest === undefined) issue(pointer, 'guest_cert_path, guest_key_path and guest_ca_path need guest_id and guest_type');
    let push: PushTargets;
    if (explicit) {
      push = { handover: false };
      if (entry.guest_cert_path !== undefined) push.cert = entry.guest_cert_path;
      if (entry.guest_key_path !== undefined) push.key = entry.guest_key_path;
      if (entry.include_ca) push.ca = entry.guest_ca_path ?? (entry.guest_cert_path ? path.posix.join(path.posix.dirname(entry.guest_cert_path), 'ca.crt') : HANDOVER.ca);
      else if (entry.guest_ca_path !== undefined) warnings.push(`${name}: guest_ca_path is set but include_ca is not; the root CA is not copied`);
    } else if (post && guest && mentionsHandover(post.text)) {
      // Only the hand-over files the command names: a command that reads the
      // files through a mount gets no stray copies (least of all of the key).
      push = { handover: true };
      if (post.text.includes(HANDOVER.cert)) push.cert = HANDOVER.cert;
      if (post.text.includes(HANDOVER.key)) push.key = HANDOVER.key;
      if (entry.include_ca) push.ca = HANDOVER.ca;
    } else {
      push = { handover: false };
      if (entry.include_ca) warnings.push(`${name}: include_ca has no effect without guest_ca_path or a post_renewal_command that reads ${HANDOVER.ca}`);
    }

    const plan: CertificatePlan = {
      index,
      pointer,
      entry,
      name,
      certFile: onHost(options.hostRoot, entry.cert_path),
      keyFile: onHost(options.hostRoot, entry.key_path),
      sans,
      requestSans,
      certType: entry.cert_type ?? 'server',
      keyMode,
      validity,
      validityMs: validityMs ?? 0,
      renewBefore,
      renewBeforeMs: renewBeforeMs ?? 0,
      push,
    };
    if (owner) plan.owner = owner;
    if (guest) plan.guest = guest;
    if (post) plan.post = post;
    return plan;
  });

  if (plans.some((p) => p.post)) {
    const problem = manifestTrustProblem(file);
    if (problem) issue('', `${problem}; its post_renewal_command values run as root on the host, so Phoenix refuses to run them`);
  }
  if (issues.length > 0) throw new ManifestError(issues, { hint: 'post_renewal_command is trusted input: an argument vector run as root, no shell' });
  return { file, ca: caSettings(config, options), plans, warnings };
}

function mentionsHandover(text: string): boolean {
  return Object.values(HANDOVER).some((p) => text.includes(p));
}

/**
 * The owner of the host files: the manifest's `owner` when given; else, for
 * a file the container sees through a bind mount, the owner that mount
 * declares (or the container's root), mapped to host ids. A key owned by
 * host root is unreadable for root inside an unprivileged container.
 */
function ownerFor(entry: CertificateEntry, guest: GuestTarget | undefined, lxc: Record<string, LxcConfig>): OwnerSpec | undefined {
  const ct = guest?.kind === 'lxc' ? lxc[guest.id] : undefined;
  const mount = ct ? mountHolding(ct, entry.key_path) : undefined;
  const container = ct && mount && guest ? { id: guest.id, ct, guestKeyPath: path.posix.join(mount.container_path, path.posix.relative(path.posix.normalize(mount.host_path), path.posix.normalize(entry.key_path))) } : undefined;
  if (entry.owner !== undefined) {
    const [user = '', group = ''] = entry.owner.split(':');
    return { text: entry.owner, user, group, source: 'manifest', ...(container ? { container } : {}) };
  }
  if (!ct || !mount || !container) return undefined;
  const uid = mount.owner_uid ?? 0;
  const gid = mount.owner_gid ?? 0;
  return { text: `${uid}:${gid}`, user: String(uid), group: String(gid), source: 'mount', container };
}

/** The container's bind mount whose host directory holds this file. */
function mountHolding(ct: LxcConfig, file: string): MountPoint | undefined {
  const dir = path.posix.dirname(path.posix.normalize(file));
  return (ct.mount_points ?? []).find((m) => {
    const root = path.posix.normalize(m.host_path).replace(/\/+$/, '');
    return dir === root || dir.startsWith(`${root}/`);
  });
}

/**
 * Why the manifest cannot be trusted with commands: writable by group or
 * others, or owned by someone other than root or the user running Phoenix.
 */
export function manifestTrustProblem(file: string): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return undefined;
  }
  if ((stat.mode & 0o022) !== 0) return `${file} is writable by ${(stat.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(stat.mode & 0o777).toString(8)}; chmod go-w it)`;
  const me = typeof process.getuid === 'function' ? process.getuid() : 0;
  if (stat.uid !== 0 && stat.uid !== me) return `${file} belongs to uid ${stat.uid}, neither root nor the user running Phoenix`;
  return undefined;
}
