// Getting a certificate to where it is used, once it changed:
//
//   push     copies into the guest: `pct push --perms` for a container,
//            `qm guest exec --pass-stdin` into `install` for a VM, so the
//            key travels on stdin and never in an argument, which `ps` shows;
//   post     the entry's post_renewal_command, as an argument vector
//            without a shell (shell-words.mts says why); a `qm guest exec` answer is read
//            for the guest command's own exit status;
//   reload   nginx in the gateway container and Traefik in the mesh
//            container, once per run for all their entries that changed.

import * as pct from '../pve/pct.mts';
import * as qm from '../pve/qm.mts';
import { run } from '../core/runner.mts';
import { isDryRun } from '../core/context.mts';
import { PhoenixError } from '../core/errors.mts';
import { info } from '../core/log.mts';
import type { PhoenixConfig } from '../config/load.mts';
import type { CertificatePlan, GuestTarget } from './manifest.mts';
import { CERT_MODE } from './manifest.mts';

/** Time limit of a post-renewal command. */
export const POST_TIMEOUT_MS = 10 * 60_000;
/** How long a file push into a VM may take. */
const VM_PUSH_TIMEOUT_MS = 120_000;

export interface PushFile {
  guestPath: string;
  /** The host file (for pct push). */
  hostFile: string;
  /** The content (for a VM, sent on stdin). */
  content: string;
  mode: number;
}

/** What goes into the guest for this entry, in push order. */
export function pushFiles(plan: CertificatePlan, certPem: string, keyPem: string, root: { file: string; pem: string }): PushFile[] {
  const files: PushFile[] = [];
  if (plan.push.key) files.push({ guestPath: plan.push.key, hostFile: plan.keyFile, content: keyPem, mode: 0o600 });
  if (plan.push.cert) files.push({ guestPath: plan.push.cert, hostFile: plan.certFile, content: certPem, mode: CERT_MODE });
  if (plan.push.ca) files.push({ guestPath: plan.push.ca, hostFile: root.file, content: root.pem, mode: CERT_MODE });
  return files;
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

export async function pushIntoGuest(guest: GuestTarget, files: readonly PushFile[]): Promise<void> {
  if (guest.kind === 'lxc') {
    const dirs = [...new Set(files.map((f) => f.guestPath.slice(0, f.guestPath.lastIndexOf('/')) || '/'))].filter((d) => d !== '/tmp' && d !== '/');
    if (dirs.length > 0) await pct.exec(guest.id, ['mkdir', '-p', ...dirs], { quiet: true });
    for (const file of files) await pct.push(guest.id, file.hostFile, file.guestPath, { perms: octal(file.mode) });
    return;
  }
  for (const file of files) {
    const result = await qm.guestExec(guest.id, ['install', '-D', '-m', octal(file.mode), '-o', 'root', '-g', 'root', '/dev/stdin', file.guestPath], {
      input: file.content,
      timeoutMs: VM_PUSH_TIMEOUT_MS,
      allowFailure: true,
    });
    if (result.exitcode !== 0) throw new PhoenixError(`copying ${file.guestPath} into VM ${guest.id} failed (exit ${result.exitcode}): ${(result.stderr || result.stdout).trim()}`);
  }
}

/** Remove what the /tmp hand-over left behind (a key must not linger in /tmp). */
export async function removeHandover(guest: GuestTarget, paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return;
  if (guest.kind === 'lxc') await pct.exec(guest.id, ['rm', '-f', '--', ...paths], { quiet: true, allowFailure: true });
  else await qm.guestExec(guest.id, ['rm', '-f', '--', ...paths], { allowFailure: true, timeoutMs: VM_PUSH_TIMEOUT_MS });
}

/**
 * Run the entry's post-renewal command. `qm guest exec` prints the guest
 * command's result as JSON and may exit 0 although that command failed, so
 * its answer decides.
 */
export async function runPostCommand(plan: CertificatePlan): Promise<void> {
  const post = plan.post;
  if (!post) return;
  const [cmd, ...args] = post.argv as [string, ...string[]];
  info(`${plan.name}: running its post-renewal command`);
  const result = await run({ cmd, args, timeoutMs: POST_TIMEOUT_MS, allowFailure: true, retry: false });
  if (result.skipped) return;
  const output = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' | ');
  if (result.code !== 0) throw new PhoenixError(`post-renewal command failed (exit ${result.code})${output ? `: ${output}` : ''}`);
  if (cmd === 'qm' && args[0] === 'guest' && args[1] === 'exec') {
    let answer: { exitcode?: number; exited?: number | boolean; 'err-data'?: string } | undefined;
    try {
      answer = JSON.parse(result.stdout) as typeof answer;
    } catch {
      answer = undefined;
    }
    if (answer === undefined) throw new PhoenixError('post-renewal command: qm guest exec did not answer with JSON, so the guest command\'s result is unknown');
    if (!(answer.exited === 1 || answer.exited === true)) {
      throw new PhoenixError('post-renewal command was still running in the guest when qm stopped waiting; give it a longer --timeout');
    }
    if ((answer.exitcode ?? 0) !== 0) {
      const err = (answer['err-data'] ?? '').trim().split('\n').slice(-3).join(' | ');
      throw new PhoenixError(`post-renewal command failed in the guest (exit ${answer.exitcode})${err ? `: ${err}` : ''}`);
    }
  }
}

// ---------------------------------------------------------------- service reloads

export interface ServiceReload {
  ctid: string;
  unit: string;
  /** What applies new certificate files: nginx re-reads them on reload; Traefik's file provider does not watch them. */
  action: 'reload' | 'restart';
  /** A configuration check run first, so a bad file is reported instead of silently kept out. */
  check?: string[];
}

/** The TLS services Phoenix manages, by container: nginx (the gateway) and Traefik (the mesh). */
export function managedServices(config: PhoenixConfig): ServiceReload[] {
  const services: ServiceReload[] = [];
  let lxc: PhoenixConfig['lxc']['lxc_configs'] = {};
  try {
    lxc = config.lxc.lxc_configs;
  } catch {
    lxc = {};
  }
  const hv = (() => {
    try {
      return config.hypervisor;
    } catch {
      return undefined;
    }
  })();
  const clientName = hv?.gateway?.client_certificate ?? 'nginx-gateway-client';
  const client = config.certificates.find((e) => e.common_name === clientName && e.guest_type !== 'vm' && e.guest_id !== undefined);
  const nginxId = client ? String(client.guest_id) : Object.keys(lxc).find((id) => lxc[id]?.traefik_service?.name === 'nginx');
  if (nginxId) services.push({ ctid: nginxId, unit: 'nginx', action: 'reload', check: ['nginx', '-t', '-q'] });
  const traefikIds = Object.keys(lxc).filter((id) => lxc[id]?.features?.includes('traefik'));
  if (traefikIds.length === 1) services.push({ ctid: traefikIds[0] as string, unit: 'traefik', action: 'restart' });
  return services;
}

export type ReloadOutcome = 'reloaded' | 'not-running';

/** Reload (or restart) one service after its certificate files changed; a stopped service reads them when it starts. */
export async function reloadService(service: ServiceReload): Promise<ReloadOutcome> {
  const active = await pct.exec(service.ctid, ['systemctl', 'is-active', '--quiet', service.unit], { mutating: false, allowFailure: true, quiet: true });
  if (active.code !== 0) return 'not-running';
  if (service.check) {
    const checked = await pct.exec(service.ctid, service.check, { mutating: false, allowFailure: true });
    if (checked.code !== 0) {
      throw new PhoenixError(`${service.unit} in CT ${service.ctid} rejects its configuration, so it was not reloaded: ${(checked.stderr || checked.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    }
  }
  await pct.exec(service.ctid, ['systemctl', service.action, service.unit]);
  return 'reloaded';
}

/**
 * Check from inside the container that the key can be read by the user who
 * needs it (the owner's user; root when the manifest names none): the way
 * nginx or Traefik will open it, through the container's id maps. A key the
 * host can read but the container cannot would only show when the service
 * next restarts.
 */
export async function verifyInGuest(plan: CertificatePlan): Promise<string | undefined> {
  if (plan.guest?.kind !== 'lxc' || isDryRun()) return undefined;
  const paths = [plan.owner?.container?.guestKeyPath, plan.push.handover ? undefined : plan.push.key].filter((p): p is string => p !== undefined);
  if (paths.length === 0) return undefined;
  const user = plan.owner?.container ? plan.owner.user : 'root';
  const group = plan.owner?.container ? plan.owner.group : 'root';
  const asRoot = user === 'root' || user === '0';
  for (const file of [...new Set(paths)]) {
    const argv = asRoot ? ['test', '-r', file] : ['setpriv', `--reuid=${user}`, `--regid=${group}`, /^\d+$/.test(user) ? '--clear-groups' : '--init-groups', '--', 'test', '-r', file];
    const result = await pct.exec(plan.guest.id, argv, { mutating: false, allowFailure: true, quiet: true });
    if (result.code !== 0) {
      throw new PhoenixError(`${file} in CT ${plan.guest.id} cannot be read by ${user} there${result.stderr.trim() ? ` (${result.stderr.trim()})` : ''}`, {
        hint: `the files' owner is ${plan.owner?.text ?? 'not set'}; an unprivileged container reads host files only through its id maps`,
      });
    }
  }
  return `key readable by ${user} in CT ${plan.guest.id}`;
}
