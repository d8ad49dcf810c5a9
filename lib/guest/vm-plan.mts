// What the VM features share beyond the plan runner (feature-plan.mts): the
// VM's manifest entry, host paths, the Docker daemon certificate, the
// upstream script names. A VM feature runs on the host and acts on one VM
// through the QEMU guest agent (feature-target.mts).

import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, PhoenixError } from '../core/errors.mts';
import { warn } from '../core/log.mts';
import type { CertificateEntry, VmConfig } from '../config/types.mts';
import type { FeatureContext, FeatureResult } from './feature-steps.mts';
import { skipped as skippedOn } from './feature-plan.mts';

export type { CommandStep, FeatureContext, FeatureInstall, FeatureOutcome, FeaturePlan, FeatureResult, FileStep, HostStep, RequireStep, Step } from './feature-steps.mts';
export { applyPlan, reportFeature } from './feature-plan.mts';
export { APT_TIMEOUT_MS, CHECK_TIMEOUT_MS, STEP_TIMEOUT_MS, actionScript, assertPlanIsSafe, checkScript, fileInPlace, fileMeta, parseState, sha256, shortfalls, type FileState, type GuestState } from './feature-script.mts';

/** The upstream file name of each VM feature script. */
export function scriptName(feature: string): string {
  if (feature === 'template') return 'feature_template.sh';
  if (feature.startsWith('sync_')) return `feature_${feature}.sh`;
  return `feature_install_${feature}.sh`;
}

export function skipped(feature: string, vmid: string, reason: string): FeatureResult {
  return skippedOn(feature, 'vm', vmid, reason);
}

// ---------------------------------------------------------------- manifests

/** The VM's manifest entry; a VMID the manifest does not know is a configuration error. */
export function vmConfig(context: FeatureContext, vmid: string): VmConfig {
  const vm = context.config.vm.vms.find((v) => String(v.vmid) === vmid);
  if (!vm) throw new ConfigError(context.config.paths.vm, '/vms', `no VM with vmid ${vmid}`);
  return vm;
}

export function vmPointer(context: FeatureContext, vmid: string): string {
  return `/vms/${context.config.vm.vms.findIndex((v) => String(v.vmid) === vmid)}`;
}

/** A host path named by a manifest, under PHOENIX_HOST_ROOT (the simulated host keeps its files there). */
export function onHost(context: FeatureContext, manifestPath: string): string {
  const root = context.options.hostRoot;
  return root === '/' ? manifestPath : path.join(root, manifestPath);
}

/**
 * The certificate-manifest entry of the VM's Docker daemon: a `vm` entry for
 * this guest whose common name starts with `docker-daemon.` (the name the
 * upstream plan gave it) or `docker.`. Undefined when there is none.
 */
export function dockerDaemonCertificate(context: FeatureContext, vmid: string): CertificateEntry | undefined {
  const isDockerName = (cn: string) => /^docker(-daemon)?(\.|$)/.test(cn);
  const matches = context.config.certificates.filter(
    (e) => e.guest_type === 'vm' && String(e.guest_id) === vmid && (e.cert_type ?? 'server') === 'server' && isDockerName(e.common_name),
  );
  if (matches.length > 1) {
    throw new ConfigError(context.config.paths.certificates, '', `VM ${vmid} has ${matches.length} Docker daemon certificates (${matches.map((e) => e.common_name).join(', ')}); keep one`);
  }
  if (matches.length === 0) {
    const unbound = context.config.certificates.find((e) => isDockerName(e.common_name) && e.guest_id === undefined);
    if (unbound) warn(`certificate ${unbound.common_name} looks like a Docker daemon certificate but names no guest; add "guest_id": ${vmid}, "guest_type": "vm" to use it for VM ${vmid}`);
  }
  return matches[0];
}

/** A host file's text; missing is an error that says who makes it. */
export function readHostFile(file: string, what: string, hint: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PhoenixError(`${what} is missing on the host: ${file}`, { hint });
    throw new PhoenixError(`cannot read ${what} (${file}): ${(err as Error).message}`, { hint });
  }
}
