// What the Step-CA container's application script takes from the manifests:
// the CA's name, the names and addresses in its certificate, its URL and
// provisioner, and the host paths it uses. Checked before anything changes;
// a missing or contradictory value names the file and the JSON pointer.

import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../core/errors.mts';
import { onHost } from '../guest/hostdirs.mts';
import type { PhoenixConfig } from '../config/load.mts';
import type { LxcConfig } from '../config/types.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { DEFAULT_STEP_CA_CTID, rootCaFile, STEP_CA_PORT, STEP_CA_STEPPATH } from '../guest/root-ca.mts';
import { LEGACY_SHARED_DIR } from './shared-dir.mts';

/** The CA's name when `step_ca.root_ca_name` is not set (step calls the root "<name> Root CA"). */
export const DEFAULT_CA_NAME = 'Phoenix Internal';
/** The JWK provisioner host-side issuance uses, when `step_ca.provisioner_name` is not set. */
export const DEFAULT_PROVISIONER_NAME = 'phoenix-admin';
/** Host file of the provisioner password, when `step_ca.provisioner_password_file` is not set. */
export const DEFAULT_PROVISIONER_PASSWORD_FILE = '/etc/phoenix/secrets/step_provisioner_password';

export interface StepCaSettings {
  ctid: string;
  /** `step ca init --name`: the root becomes "<name> Root CA", the intermediate "<name> Intermediate CA". */
  name: string;
  /** `--dns` values: the names and addresses clients reach the CA by. */
  dnsNames: string[];
  /** Names that must resolve inside the CA container itself (to 127.0.0.1). */
  localNames: string[];
  caUrl: string;
  provisioner: string;
  /** Host path (inside PHOENIX_HOST_ROOT) of the provisioner password. */
  provisionerPasswordFile: string;
  /** Host path (inside PHOENIX_HOST_ROOT) of the root certificate copy (lib/guest/root-ca.mts rootCaFile). */
  rootCaFile: string;
  /** The host directory behind STEPPATH when the container bind-mounts it. */
  hostStepDir?: string;
  /** The host directory the container mounts at /etc/step-ca/ssl, the bash CA's shared directory. */
  sharedDir?: string;
  /** Things in the manifests worth a warning (they do not stop the run). */
  warnings: string[];
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function staticAddresses(ct: LxcConfig): string[] {
  return [ct.network_config, ct.secondary_network_config]
    .map((nic) => nic?.ip?.split('/')[0])
    .filter((ip): ip is string => ip !== undefined && IPV4.test(ip));
}

/** Whether a firewall port list ("9000", "80,9000", "8000:9100") covers `port`. */
function portListHas(list: string | undefined, port: number): boolean {
  return (list ?? '').split(',').some((part) => {
    const [low, high] = part.trim().split(':').map(Number);
    return low !== undefined && (high === undefined ? low === port : low <= port && port <= high);
  });
}

/**
 * Addresses other guests reach the CA by, besides its own: the hosts of
 * their `bootstrap_ca_url`, and the single addresses their firewall rules
 * let them send to at the CA's port. An address that belongs to another
 * guest is skipped (Portainer also listens on 9000).
 */
function consumerAddresses(config: PhoenixConfig, ctid: string): string[] {
  const lxcs = Object.entries(config.lxc.lxc_configs);
  const vms = fs.existsSync(config.paths.vm) ? config.vm.vms : [];
  const others = new Set([...lxcs.filter(([id]) => id !== ctid).flatMap(([, ct]) => staticAddresses(ct)), ...vms.map((vm) => vm.network_config?.ip?.split('/')[0])]);
  const found: string[] = [];
  for (const [, ct] of lxcs) {
    const host = ct.bootstrap_ca_url ? urlHost(ct.bootstrap_ca_url) : undefined;
    if (host && IPV4.test(host)) found.push(host);
  }
  for (const guest of [...lxcs.map(([, ct]) => ct), ...vms]) {
    for (const rule of guest.firewall?.rules ?? []) {
      if (rule.type !== 'out' || !portListHas(rule.port, STEP_CA_PORT)) continue;
      found.push(...(rule.dest ?? '').split(',').map((d) => d.trim()).filter((d) => IPV4.test(d)));
    }
  }
  return found.filter((address) => !others.has(address));
}

/**
 * The CA's `--dns` names in the bash's order: its name (and the CA URL's
 * host), the domain and its wildcard, loopback, the container's addresses,
 * then the addresses other guests reach it by. The first is the name
 * step-ca puts in the links it hands out.
 */
export function caDnsNames(config: PhoenixConfig, ctid: string, caName: string | undefined, urlHostName: string): string[] {
  const ct = config.lxc.lxc_configs[ctid];
  const names = [caName, IPV4.test(urlHostName) ? undefined : urlHostName];
  const domain = config.hypervisor.domain_name?.trim().replace(/\.$/, '');
  const domainNames = domain ? [domain, `*.${domain}`] : [];
  const addresses = ['127.0.0.1', ...(ct ? staticAddresses(ct) : []), ...(IPV4.test(urlHostName) ? [urlHostName] : []), ...consumerAddresses(config, ctid)];
  return [...new Set([...names, ...domainNames, ...addresses].filter((n): n is string => n !== undefined && n !== ''))];
}

function urlHost(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '') || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Everything the CA needs from the manifests, checked before anything
 * changes; a missing or contradictory value names the file and the JSON
 * pointer.
 */
export function stepCaSettings(config: PhoenixConfig, options: PhoenixOptions): StepCaSettings {
  const file = config.paths.hypervisor;
  const step = config.hypervisor.step_ca ?? {};
  const warnings: string[] = [];
  const ctid = step.ctid ?? DEFAULT_STEP_CA_CTID;
  const ct = config.lxc.lxc_configs[ctid];
  if (!ct) {
    throw new ConfigError(file, '/step_ca/ctid', `CT ${ctid} is not in ${config.paths.lxc}`, 'step_ca.ctid names the container that runs the CA');
  }

  const caUrl = step.ca_url ?? (step.dns_name ? `https://${step.dns_name}:${STEP_CA_PORT}` : undefined);
  if (!caUrl) throw new ConfigError(file, '/step_ca', 'neither dns_name nor ca_url is set', 'set step_ca.dns_name (the CA host name, e.g. ca.<domain>) and optionally step_ca.ca_url');
  const host = urlHost(caUrl);
  if (!host) throw new ConfigError(file, '/step_ca/ca_url', `'${caUrl}' is not a URL`);

  if (staticAddresses(ct).length === 0) warnings.push(`CT ${ctid} has no static IPv4 address in ${config.paths.lxc}; the CA certificate will name no address of it`);
  const names = [...new Set([step.dns_name, IPV4.test(host) ? undefined : host].filter((n): n is string => n !== undefined && n !== ''))];
  const dnsNames = caDnsNames(config, ctid, step.dns_name, host);

  let name = DEFAULT_CA_NAME;
  if (step.root_ca_name) {
    const stripped = step.root_ca_name.replace(/\s+Root CA$/, '');
    if (stripped === step.root_ca_name || stripped === '') {
      warnings.push(`step_ca.root_ca_name '${step.root_ca_name}' does not end in ' Root CA'; step names the root '${step.root_ca_name} Root CA'`);
    }
    name = stripped || step.root_ca_name;
  }
  if (step.intermediate_ca_name && step.intermediate_ca_name !== `${name} Intermediate CA`) {
    warnings.push(`step_ca.intermediate_ca_name '${step.intermediate_ca_name}' cannot be chosen separately; step names the intermediate '${name} Intermediate CA'`);
  }

  const mountAt = (dir: string) => (ct.mount_points ?? []).find((m) => path.posix.resolve('/', m.container_path) === dir);
  const mount = mountAt(STEP_CA_STEPPATH);
  const shared = mountAt(LEGACY_SHARED_DIR);
  return {
    ctid,
    name,
    dnsNames,
    localNames: names,
    caUrl,
    provisioner: step.provisioner_name ?? DEFAULT_PROVISIONER_NAME,
    provisionerPasswordFile: onHost(options.hostRoot, step.provisioner_password_file ?? DEFAULT_PROVISIONER_PASSWORD_FILE),
    rootCaFile: rootCaFile({ config, options }),
    ...(mount ? { hostStepDir: onHost(options.hostRoot, mount.host_path) } : {}),
    ...(shared ? { sharedDir: onHost(options.hostRoot, shared.host_path) } : {}),
    warnings,
  };
}
