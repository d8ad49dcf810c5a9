// `phoenix setup` (hypervisor-manager): the bare Proxmox node taken to the
// state the manifests describe, one step per hypervisor_setup script of the
// bash toolkit, in its order. What is different from the bash, and why:
//
// - Every step's manifest checks run first, all of them, before the first
//   change: a bad key in the Samba section stops the run before the network
//   or the disks are touched.
// - The steps run in this process, not as 16 child scripts, and each one
//   reports what it changed; a second run reports "unchanged" for every step.
// - A step that needs a reboot (the NVIDIA driver) ends the run with
//   REBOOT_REQUIRED_EXIT instead of rebooting the host under the run; the
//   next run, after the reboot, finds the earlier steps done and goes on.
// - `/etc/resolv.conf` is not restored from a backup at the start (the DNS
//   step owns that file and writes it when it differs).

import fs from 'node:fs';
import path from 'node:path';
import { info, success, warn } from '../core/log.mts';
import { isDryRun } from '../core/context.mts';
import { PhoenixError } from '../core/errors.mts';
import { PROJECT_ROOT } from '../core/bridge.mts';
import { ManifestError } from '../config/schema-check.mts';
import type { PhoenixConfig } from '../config/load.mts';
import type { ConfigIssue, HypervisorConfig } from '../config/types.mts';
import { onHost } from '../guest/hostdirs.mts';
import { RebootRequiredError, type SetupContext, type StepResult } from './setup-step.mts';

/** One step: the bash script it replaces, its checks of the manifest, its work (loaded when it runs). */
export interface SetupStepSpec {
  script: string;
  title: string;
  validate?: (config: HypervisorConfig, file: string) => Promise<ConfigIssue[]>;
  /** Read-only checks of the host that must pass before the first step changes anything (a secret file's mode). */
  preflight?: (context: SetupContext) => Promise<void>;
  run: (context: SetupContext) => Promise<StepResult>;
}

/** The 16 steps of the bash hypervisor-manager, in its order. */
export const SETUP_STEPS: readonly SetupStepSpec[] = [
  {
    script: 'hypervisor_initial_setup',
    title: 'packages, repositories, time, host name',
    validate: async (c, f) => (await import('./initial-setup.mts')).validateInitialSetup(c, f),
    run: async (ctx) => (await import('./initial-setup.mts')).initialSetup(ctx),
  },
  {
    script: 'hypervisor_feature_setup_macvlan',
    title: 'bridges and VLANs',
    validate: async (c, f) => (await import('./network.mts')).validateNetwork(c, f),
    run: async (ctx) => (await import('./network.mts')).setupNetwork(ctx),
  },
  {
    script: 'hypervisor_feature_setup_zfs',
    title: 'ZFS pools, datasets and their storages',
    validate: async (c, f) => (await import('./zfs-setup.mts')).validateZfs(c, f),
    run: async (ctx) => (await import('./zfs-setup.mts')).setupZfs(ctx),
  },
  {
    script: 'hypervisor_feature_setup_firewall',
    title: 'Proxmox firewall files',
    run: async (ctx) => firewallStep(ctx),
  },
  {
    script: 'hypervisor_feature_setup_nfs',
    title: 'NFS exports and their storages',
    validate: async (c, f) => (await import('./nfs.mts')).validateNfs(c, f),
    run: async (ctx) => (await import('./nfs.mts')).setupNfs(ctx),
  },
  {
    script: 'hypervisor_feature_configure_vfio',
    title: 'VFIO passthrough',
    validate: async (c, f) => (await import('./vfio.mts')).validateGpu(c, f),
    run: async (ctx) => (await import('./vfio.mts')).configureVfio(ctx),
  },
  {
    script: 'hypervisor_feature_install_nvidia',
    title: 'NVIDIA host driver',
    run: async (ctx) => (await import('./nvidia-driver.mts')).installNvidiaDriver(ctx),
  },
  {
    script: 'hypervisor_feature_initialize_nvidia_gpus',
    title: 'NVIDIA GPU initialisation at boot',
    run: async (ctx) => (await import('./nvidia-driver.mts')).initializeNvidiaGpus(ctx),
  },
  {
    script: 'hypervisor_feature_setup_dns_server',
    title: 'dnsmasq for the internal names',
    run: async (ctx) => {
      const result = await (await import('./dnsmasq.mts')).setupDnsServer(ctx.config, ctx.options);
      return result.outcome === 'disabled' ? { changes: [], skipped: 'dns_server.enabled is not true' } : { changes: result.changes };
    },
  },
  {
    script: 'hypervisor_feature_create_heads_user',
    title: 'the operator account',
    validate: async (c, f) => (await import('./accounts.mts')).validateAccounts(c, f),
    preflight: async (ctx) => (await import('./accounts.mts')).preflightAccounts(ctx),
    run: async (ctx) => (await import('./accounts.mts')).createHeadsUser(ctx),
  },
  {
    script: 'hypervisor_feature_setup_samba',
    title: 'Samba shares',
    validate: async (c, f) => (await import('./samba.mts')).validateSamba(c, f),
    preflight: async (ctx) => (await import('./samba.mts')).preflightSamba(ctx),
    run: async (ctx) => (await import('./samba.mts')).setupSamba(ctx),
  },
  {
    script: 'hypervisor_feature_create_admin_user',
    title: 'the admin account',
    run: async (ctx) => (await import('./accounts.mts')).createAdminUser(ctx),
  },
  {
    script: 'hypervisor_feature_provision_shared_resources',
    title: 'shared volumes and directories',
    validate: async (c, f) => (await import('./shared-resources.mts')).validateSharedResources(c, f),
    run: async (ctx) => (await import('./shared-resources.mts')).provisionSharedResources(ctx),
  },
  {
    script: 'hypervisor_feature_setup_apparmor',
    title: 'AppArmor profiles',
    run: async (ctx) => (await import('./apparmor.mts')).setupApparmor(ctx),
  },
  {
    script: 'hypervisor_feature_fix_apparmor_tunables',
    title: 'AppArmor home tunables',
    run: async (ctx) => (await import('./apparmor.mts')).fixApparmorTunables(ctx),
  },
  {
    script: 'hypervisor_feature_setup_auto_renewal',
    title: 'certificate renewal timer',
    run: async (ctx) => ({ changes: (await (await import('./auto-renewal.mts')).setupAutoRenewal(ctx.config, ctx.options)).changes }),
  },
];

async function firewallStep(ctx: SetupContext): Promise<StepResult> {
  const { applyFirewall } = await import('../firewall/apply.mts');
  const result = await applyFirewall(ctx.config, { alwaysValidate: true, pveDir: ctx.options.pveDir });
  const changes = result.files
    .filter((f) => f.outcome === 'created' || f.outcome === 'changed' || f.outcome === 'removed')
    .map((f) => `${f.outcome} ${f.path}`);
  if (result.restarted) changes.push('pve-firewall restarted');
  return { changes };
}

/** Every step's checks of the manifests, all before any change; one error listing every problem. */
export async function validateSetup(config: PhoenixConfig, steps: readonly SetupStepSpec[] = SETUP_STEPS): Promise<void> {
  const hypervisor = config.hypervisor;
  const file = config.paths.hypervisor;
  // The guests' manifests too: the firewall and DNS steps read them.
  config.validateReferences();
  const issues: ConfigIssue[] = [];
  for (const step of steps) if (step.validate) issues.push(...(await step.validate(hypervisor, file)));
  if (issues.length > 0) throw new ManifestError(issues, { hint: 'nothing was changed; fix the manifest and run `phoenix setup` again' });
}

export interface SetupReport {
  steps: Array<{ script: string; result: StepResult }>;
  changed: number;
  /** Reboots that are due but did not stop the run (VFIO, kernel command line). */
  reboots: string[];
}

/** Run the steps in order; stop with RebootRequiredError when one cannot go on before a reboot. */
export async function runSetupSteps(context: SetupContext, steps: readonly SetupStepSpec[] = SETUP_STEPS): Promise<SetupReport> {
  const report: SetupReport = { steps: [], changed: 0, reboots: [] };
  const dry = isDryRun();
  for (const [index, step] of steps.entries()) {
    const label = `[${index + 1}/${steps.length}] ${step.script}`;
    info(`${label}: ${step.title}...`);
    let result: StepResult;
    try {
      result = await step.run(context);
    } catch (err) {
      if (err instanceof PhoenixError) {
        throw new PhoenixError(`${step.script}: ${err.message}`, { exitCode: err.exitCode, ...(err.hint ? { hint: err.hint } : {}), cause: err });
      }
      throw err;
    }
    report.steps.push({ script: step.script, result });
    report.changed += result.changes.length;
    if (result.skipped !== undefined && result.changes.length === 0) info(`${label}: skipped: ${result.skipped}`);
    else if (result.changes.length === 0) info(`${label}: unchanged`);
    else {
      const verb = dry ? 'would change' : 'changed';
      success(`${label}: ${verb} ${result.changes.length}: ${result.changes.join('; ')}`);
    }
    if (result.reboot) {
      if (result.reboot.stop && !dry) throw new RebootRequiredError(`${step.script}: ${result.reboot.reason}`);
      report.reboots.push(`${step.script}: ${result.reboot.reason}`);
    }
  }
  return report;
}

/**
 * `/usr/local/bin/phoenix` → the project's phoenix-global, as the bash's
 * last step made it. A regular file or directory there is someone else's
 * and is refused; a symlink elsewhere is replaced.
 */
export function ensureGlobalCommand(hostRoot: string, target = path.join(PROJECT_ROOT, 'scripts', 'phoenix-global.mjs')): string | undefined {
  const link = onHost(hostRoot, '/usr/local/bin/phoenix');
  let current: string | undefined;
  try {
    const stat = fs.lstatSync(link);
    if (!stat.isSymbolicLink()) {
      throw new PhoenixError(`${link} exists and is not a symbolic link: it was left as it is`, {
        hint: 'move it away if the `phoenix` command should be Phoenix, then run setup again',
      });
    }
    current = fs.readlinkSync(link);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (current === target) return undefined;
  if (isDryRun()) return `would link ${link} -> ${target}`;
  fs.mkdirSync(path.dirname(link), { recursive: true });
  const temp = `${link}.phoenix-new`;
  fs.rmSync(temp, { force: true });
  fs.symlinkSync(target, temp);
  fs.renameSync(temp, link); // atomic: the command is never missing
  return `linked ${link} -> ${target}`;
}

/** The host-dependent checks of every step (read-only), all before the first change. */
export async function preflightSetup(context: SetupContext, steps: readonly SetupStepSpec[] = SETUP_STEPS): Promise<void> {
  for (const step of steps) if (step.preflight) await step.preflight(context);
}

/** The whole of `phoenix setup`: checks, steps, the global command, the summary. */
export async function runHypervisorSetup(context: SetupContext): Promise<number> {
  await validateSetup(context.config);
  await preflightSetup(context);
  const report = await runSetupSteps(context);
  const link = ensureGlobalCommand(context.options.hostRoot);
  if (link) {
    report.changed += 1;
    info(link);
  }
  for (const reboot of report.reboots) warn(`reboot needed for the change to take effect: ${reboot}`);
  if (report.changed === 0) success(`setup: the host already matches the manifests; nothing changed (${report.steps.length} steps)`);
  else if (isDryRun()) info(`DRY-RUN: setup would make ${report.changed} change(s); nothing was changed`);
  else success(`setup: ${report.changed} change(s) made`);
  return 0;
}
