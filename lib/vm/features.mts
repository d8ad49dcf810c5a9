// VM features (`features[]` of a VM): bin/vm_features/feature_install_<f>.sh.
//
// - A port runs on the host with the VMID and works on the VM through
//   `qm guest exec`. It is called in-process (lib/features/index.mts, one
//   Node start less per feature); a port outside that registry runs as a script.
// - A legacy bash copy was written to run inside the VM, so it still does:
//   it is staged with the sibling files it reads (the common utilities,
//   vm_context.json, the VM manifest, the hypervisor manifest without its
//   secrets), started through the guest agent, its log followed, its exit
//   status read from the agent, with a time limit. The Step-CA provisioner
//   password is not staged anywhere (no feature reads it), the staging area
//   is not made world-writable (any guest user could swap a script before
//   root runs it), and the certificates the bash pushed through a command
//   line travel on stdin (a command line shows in `ps` and in the log).

import fs from 'node:fs';
import path from 'node:path';
import { resolveScript, runScript, type ResolvedScript } from '../core/bridge.mts';
import { PhoenixError } from '../core/errors.mts';
import { isDryRun } from '../core/context.mts';
import { writeFileAtomic } from '../core/fs.mts';
import { info, success, warn } from '../core/log.mts';
import type { PhoenixConfig } from '../config/load.mts';
import type { PhoenixOptions } from '../core/env.mts';
import type { VmConfig } from '../config/types.mts';
import { certificateEntriesFor, findVm, primaryVolume, type VmSpec } from './spec.mts';
import { FEATURE_LAUNCH_SCRIPT, guestScript, runJob, stagingScript, type GuestTiming, type StagedFile } from '../guest/vm-agent.mts';
import { withoutSecrets } from '../core/redact.mts';
import { reportFeature } from '../guest/feature-plan.mts';
import type { FeatureInstall } from '../guest/feature-steps.mts';


export function featureScriptName(feature: string): string {
  return `vm_features/feature_install_${feature}.sh`;
}

export interface FeatureRunContext {
  spec: VmSpec;
  config: PhoenixConfig;
  options: PhoenixOptions;
  /** Environment for host-side child scripts (options, config paths, lock token). */
  env: Record<string, string>;
  legacyDir: string | undefined;
  useLegacy: readonly string[];
  hostRoot: string;
  timing: GuestTiming;
  /** False in a dry-run whose VM is not running yet: nothing can be asked of the guest. */
  guestReachable: boolean;
}

/** Resolve every script first, so a missing one stops the run before anything changed. */
export function resolveVmScripts(names: readonly string[], ctx: Pick<FeatureRunContext, 'legacyDir' | 'useLegacy'>): Map<string, ResolvedScript> {
  const resolved = new Map<string, ResolvedScript>();
  const problems: string[] = [];
  for (const name of names) {
    try {
      resolved.set(name, resolveScript(name, { legacyDir: ctx.legacyDir, useLegacy: ctx.useLegacy }));
    } catch (err) {
      if (!(err instanceof PhoenixError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) {
    throw new PhoenixError(`cannot run, nothing was changed: ${problems.join('; ')}`, {
      exitCode: 127,
      hint: ctx.legacyDir ? `looked for bash copies in ${ctx.legacyDir}/bin` : 'set PHOENIX_LEGACY_DIR to the bash toolkit root to run the scripts that have no port',
    });
  }
  return resolved;
}

/** Where legacy scripts sit inside the guest, and how they got there. */
interface Staging {
  guestDir: string;
  done: boolean;
}

export class FeatureRunner {
  private readonly ctx: FeatureRunContext;
  private readonly scripts: Map<string, ResolvedScript>;
  private readonly staging: Staging;

  constructor(ctx: FeatureRunContext, scripts: Map<string, ResolvedScript>) {
    this.ctx = ctx;
    this.scripts = scripts;
    const volume = primaryVolume(ctx.spec);
    // Legacy scripts expect their siblings in <first NFS mount>/.phoenix_scripts
    // (docker_proxy even names /mnt/persistent/.phoenix_scripts); without an
    // NFS volume they go to a root-only directory of the guest.
    this.staging = { guestDir: volume ? `${volume.mount_point.replace(/\/+$/, '')}/.phoenix_scripts` : GUEST_STAGING_DIR, done: false };
  }

  /**
   * Run one script by upstream name: a port on the host (in-process when it
   * can), a legacy copy inside the VM, or on the host for the few legacy
   * scripts that were written for the host (`legacyOn: 'host'`).
   */
  async run(name: string, label: string, legacyOn: 'guest' | 'host' = 'guest'): Promise<void> {
    const script = this.scripts.get(name) ?? resolveScript(name, { legacyDir: this.ctx.legacyDir, useLegacy: this.ctx.useLegacy });
    const { vmid } = this.ctx.spec;
    if (script.kind === 'port' || legacyOn === 'host') {
      info(`Applying ${label} to VM ${vmid} (${script.kind === 'port' ? 'port' : `bash copy ${script.path}`}, on the host)...`);
      if (isDryRun() && !this.ctx.guestReachable) {
        info(`DRY-RUN: would run ${name} ${vmid} once VM ${vmid} is up`);
        return;
      }
      const install = script.kind === 'port' ? await inProcessInstall(name) : undefined;
      if (install) {
        const result = await install(vmid, { config: this.ctx.config, options: this.ctx.options, pollMs: this.ctx.timing.pollMs });
        reportFeature(result);
        return;
      }
      const result = await runScript(name, [vmid], { legacyDir: this.ctx.legacyDir, useLegacy: this.ctx.useLegacy, env: this.ctx.env });
      if (result.code !== 0) throw new PhoenixError(`${label} failed for VM ${vmid} (${name} exited ${result.code})`);
      success(`${label} applied to VM ${vmid}.`);
      return;
    }
    info(`Applying ${label} to VM ${vmid} (bash copy ${script.path}, inside the VM)...`);
    await this.stage();
    const file = path.posix.basename(name);
    const logFile = `/var/log/phoenix_${file.replace(/^feature_install_/, 'feature_').replace(/\.sh$/, '')}.log`;
    const args = [this.staging.guestDir, file, logFile, vmid];
    if (isDryRun()) {
      await guestScript(vmid, FEATURE_LAUNCH_SCRIPT, args, { timing: this.ctx.timing });
      return;
    }
    const result = await runJob(vmid, FEATURE_LAUNCH_SCRIPT, args, { label, logFile, timing: this.ctx.timing });
    if (result.exitcode !== 0) {
      throw new PhoenixError(`${label} failed in VM ${vmid} with exit code ${result.exitcode}`, {
        hint: `its output is in ${logFile} inside the VM (qm guest exec ${vmid} -- tail -n 50 ${logFile})`,
      });
    }
    success(`${label} applied to VM ${vmid}.`);
  }

  /** Stage every legacy script of this run and the files they read, once. */
  private async stage(): Promise<void> {
    if (this.staging.done) return;
    this.staging.done = true;
    const { spec, config } = this.ctx;
    const legacy = [...this.scripts.values()].filter((s) => s.kind === 'legacy');
    const siblings = stagedSiblings(config, spec.vmid, legacy, this.ctx.legacyDir);
    const volume = primaryVolume(spec);
    if (volume) {
      // The host writes into the share the guest mounts, as the bash did, so
      // an NFS export with root_squash still works; nothing staged is secret.
      const hostDir = path.join(this.ctx.hostRoot, volume.path, '.phoenix_scripts');
      info(`Staging ${siblings.length} file(s) for VM ${spec.vmid} in ${hostDir} (${this.staging.guestDir} in the VM)`);
      for (const file of siblings) writeFileAtomic(path.join(hostDir, file.name), file.content, { mode: file.executable ? 0o755 : 0o644, dirMode: 0o755 });
    }
    const files: StagedFile[] = volume
      ? []
      : siblings.map((f) => ({ path: `${GUEST_STAGING_DIR}/${f.name}`, content: f.content, mode: f.executable ? '0700' : '0600' }));
    files.push(...certificateFiles(config, spec.vmid, this.ctx.hostRoot, legacy));
    if (files.length === 0) return;
    info(`Pushing ${files.length} file(s) into VM ${spec.vmid} over the guest agent (stdin): ${files.map((f) => f.path).join(', ')}`);
    const script = stagingScript(files);
    // The guest agent takes at most 1 MiB of input per command.
    if (Buffer.byteLength(script) > 1024 * 1024) throw new PhoenixError(`the files to stage in VM ${spec.vmid} exceed the guest agent's 1 MiB input limit (${Buffer.byteLength(script)} bytes)`);
    await guestScript(spec.vmid, script, [], { timing: this.ctx.timing });
  }
}

export const GUEST_STAGING_DIR = '/var/lib/phoenix/vm_features';

/** The in-process entry point of a ported VM feature, by upstream script name. */
export async function inProcessInstall(name: string): Promise<FeatureInstall | undefined> {
  const feature = /^vm_features\/feature_install_(\w+)\.sh$/.exec(name)?.[1] ?? /^vm_features\/feature_(sync_\w+)\.sh$/.exec(name)?.[1];
  if (!feature) return undefined;
  // Loaded only by runs that apply features: start, stop and status never pay for it.
  const { loadFeature } = await import('../features/index.mts');
  return loadFeature('vm', feature);
}

interface SiblingFile {
  name: string;
  content: string | Buffer;
  executable: boolean;
}

/** The files a legacy VM feature expects next to itself: it sources the common utilities and reads the manifests there. */
export function stagedSiblings(config: PhoenixConfig, vmid: string, legacy: readonly ResolvedScript[], legacyDir: string | undefined): SiblingFile[] {
  const files: SiblingFile[] = [];
  for (const script of legacy) files.push({ name: path.basename(script.path).replace(/\.legacy$/, ''), content: fs.readFileSync(script.path), executable: true });
  const utils = legacyDir ? path.join(legacyDir, 'bin', 'phoenix_hypervisor_common_utils.sh') : undefined;
  if (utils && fs.existsSync(utils)) files.push({ name: 'phoenix_hypervisor_common_utils.sh', content: fs.readFileSync(utils), executable: false });
  else warn(`phoenix_hypervisor_common_utils.sh not found in ${legacyDir ?? '(no PHOENIX_LEGACY_DIR)'}/bin; the bash features source it and may fail`);
  const vm = findVm(config.vm, vmid)?.vm as VmConfig;
  files.push({ name: 'vm_context.json', content: `${JSON.stringify(withoutSecrets(vm), null, 2)}\n`, executable: false });
  files.push({ name: 'phoenix_vm_configs.json', content: `${JSON.stringify(withoutSecrets(config.vm), null, 2)}\n`, executable: false });
  files.push({ name: 'phoenix_hypervisor_config.json', content: `${JSON.stringify(withoutSecrets(config.hypervisor), null, 2)}\n`, executable: false });
  return files;
}

/**
 * What the bash pushed into /tmp before the features: the root CA for
 * trusted_ca, and the VM's own Docker server certificate and key for docker
 * (the bash gave every VM 1001's). Read on the host, sent on stdin.
 */
export function certificateFiles(config: PhoenixConfig, vmid: string, hostRoot: string, legacy: readonly ResolvedScript[]): StagedFile[] {
  const names = new Set(legacy.map((s) => path.basename(s.upstreamName)));
  const files: StagedFile[] = [];
  const rootCa = config.hypervisor.step_ca?.root_ca_file;
  if (names.has('feature_install_trusted_ca.sh') || names.has('feature_install_docker.sh')) {
    const host = rootCa ? path.join(hostRoot, rootCa) : undefined;
    if (host && fs.existsSync(host)) files.push({ path: '/tmp/phoenix_root_ca.crt', content: fs.readFileSync(host), mode: '0644' });
    else warn(`root CA certificate ${rootCa ?? '(step_ca.root_ca_file not set)'} not found on the host; trusted_ca will fail without it`);
  }
  if (names.has('feature_install_docker.sh')) {
    const entry = certificateEntriesFor(config.certificates, vmid).find((e) => /docker/i.test(e.common_name) || /\/docker\//.test(e.cert_path));
    const cert = entry ? path.join(hostRoot, entry.cert_path) : undefined;
    const key = entry ? path.join(hostRoot, entry.key_path) : undefined;
    if (cert && key && fs.existsSync(cert) && fs.existsSync(key)) {
      files.push({ path: '/tmp/docker-server-cert.pem', content: fs.readFileSync(cert), mode: '0644' });
      files.push({ path: '/tmp/docker-server-key.pem', content: fs.readFileSync(key), mode: '0600' });
    } else {
      warn(`no Docker server certificate for VM ${vmid} ${entry ? `at ${entry.cert_path}` : 'in the certificate manifest'}; the bash docker feature needs /tmp/docker-server-{cert,key}.pem`);
    }
  }
  return files;
}

