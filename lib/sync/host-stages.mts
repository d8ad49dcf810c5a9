// Stages 1-6 of `sync all`: the stack files, then the host setup scripts
// (trusted CA, DNS, firewall), the swarm and the certificates, each run
// as a child script and judged from what it recorded.

import fs from 'node:fs';
import path from 'node:path';
import { ensureDir, writeFileAtomic } from '../core/fs.mts';
import { info, warn } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { runChild, type ChildRun } from './child.mts';
import {
  changed,
  unchanged,
  skipped,
  failed,
  onHost,
  childFailure,
  childChange,
  fromChild,
  vms,
  swarmManager,
  stacksExport,
  stackSources,
  guestState,
  SWARM_MANAGER,
  type StageResult,
  type SyncContext,
} from './stage-kit.mts';

// ---------------------------------------------------------------- stage 1: stack files

export async function syncStackFiles(ctx: SyncContext): Promise<StageResult> {
  const source = stackSources(ctx);
  const target = onHost(ctx.options, stacksExport(ctx));
  if (source === undefined) return skipped(`no stack templates in ${path.join(ctx.options.baseDir, 'stacks')} or beside ${ctx.paths.stacks}`);
  const wanted = new Map<string, { file: string; mode: number }>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) wanted.set(path.relative(source, full), { file: full, mode: (fs.statSync(full).mode & 0o111) !== 0 ? 0o755 : 0o644 });
    }
  };
  walk(source);
  let count = 0;
  if (ensureDir(target, 0o755) !== 'unchanged') count++;
  // Added and updated, never deleted: the directory also holds what
  // swarm-manager renders there (the bash's rsync --delete would remove it).
  for (const [relative, { file, mode }] of wanted) {
    if (writeFileAtomic(path.join(target, relative), fs.readFileSync(file), { mode, dirMode: 0o755 }) !== 'unchanged') count++;
  }
  return count > 0 ? changed(`${count} change${count === 1 ? '' : 's'} in ${target}`) : unchanged(`${wanted.size} files already in ${target}`);
}

// ---------------------------------------------------------------- stages 2-4: host setup scripts

export async function trustedCa(ctx: SyncContext): Promise<StageResult> {
  const run = await runChild(ctx, 'hypervisor_setup/hypervisor_feature_install_trusted_ca.sh', [], [onHost(ctx.options, '/usr/local/share/ca-certificates')]);
  return fromChild(run, 'host trust store updated', 'root CA already trusted');
}

export async function dns(ctx: SyncContext): Promise<StageResult> {
  if (ctx.config.hypervisor.dns_server?.enabled !== true) return skipped('dns_server.enabled is not true');
  const watch = ['/etc/dnsmasq.conf', '/etc/dnsmasq.d', '/etc/resolv.conf'].map((f) => onHost(ctx.options, f));
  const run = await runChild(ctx, 'hypervisor_setup/hypervisor_feature_setup_dns_server.sh', [], watch);
  return fromChild(run, 'DNS records updated', 'DNS records in place');
}

export async function firewall(ctx: SyncContext): Promise<StageResult> {
  const nodes = path.join(ctx.options.pveDir, 'nodes');
  const hostFiles = fs.existsSync(nodes) ? fs.readdirSync(nodes).map((n) => path.join(nodes, n, 'host.fw')) : [];
  const run = await runChild(ctx, 'hypervisor_setup/hypervisor_feature_setup_firewall.sh', [ctx.paths.hypervisor], [path.join(ctx.options.pveDir, 'firewall'), ...hostFiles]);
  return fromChild(run, 'firewall rules rewritten', 'firewall rules unchanged');
}

// ---------------------------------------------------------------- stage 5: swarm

export async function swarm(ctx: SyncContext): Promise<StageResult> {
  const manager = swarmManager(ctx);
  if (!manager) return skipped('no VM has swarm_role manager');
  const state = await guestState('vm', String(manager.vmid));
  if (state !== 'running') return failed(`the Swarm manager VM ${manager.vmid} is ${state === 'absent' ? 'not created' : 'not running'}`, `qm status ${manager.vmid}`);
  const runs: ChildRun[] = [await runChild(ctx, SWARM_MANAGER, ['init'])];
  const first = childFailure(runs[0]!);
  if (first) return first;
  const planned = isDryRun() && childChange(runs[0]!).changed;
  for (const worker of vms(ctx).filter((vm) => vm.swarm_role === 'worker')) {
    if (planned) {
      info(`DRY-RUN: would join VM ${worker.vmid} once the swarm is initialised`);
      continue;
    }
    const wState = await guestState('vm', String(worker.vmid));
    if (wState !== 'running') {
      warn(`Swarm worker VM ${worker.vmid} is ${wState === 'absent' ? 'not created' : 'not running'}; not joined`);
      continue;
    }
    const run = await runChild(ctx, SWARM_MANAGER, ['join', String(worker.vmid)]);
    const failure = childFailure(run);
    if (failure) return failure;
    runs.push(run);
  }
  const changes = runs.map(childChange).filter((c) => c.changed);
  return changes.length > 0 ? changed(`swarm converged (${changes.map((c) => c.what).join('; ')})`) : unchanged(`manager ${manager.vmid} and ${runs.length - 1} worker${runs.length === 2 ? '' : 's'} already in the swarm`);
}

// ---------------------------------------------------------------- stage 6: certificates

export async function certificates(ctx: SyncContext): Promise<StageResult> {
  const watch = ctx.config.certificates.flatMap((c) => [c.cert_path, c.key_path]).map((f) => onHost(ctx.options, f));
  // Not --force: the bash renewed every certificate on every sync.
  const run = await runChild(ctx, 'managers/certificate-renewal-manager.sh', [], watch);
  return fromChild(run, 'certificates issued or renewed', `${ctx.config.certificates.length} certificates valid`);
}
