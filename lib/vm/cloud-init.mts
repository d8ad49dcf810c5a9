// The VM's cloud-init files, rendered from the manifests onto the base
// documents in etc/cloud-init/. The YAML is built as data (parsed base
// document + values) and printed by the yaml package, so a manifest value
// can never break out of its place in the file.
//
// The upstream etc/cloud-init files were orphaned:
// Proxmox generated everything from ciuser/ipconfig0. Phoenix still sets
// those options (Proxmox shows them, clones inherit them) and, where a
// storage holds snippets, replaces the generated files with these through
// `cicustom`, which is how a stock cloud image gets its guest agent.

import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../core/bridge.mts';
import type { VmSpec } from './spec.mts';
import { loadYaml } from '../core/yaml.mts';

export const CLOUD_INIT_DIR = path.join(PROJECT_ROOT, 'etc', 'cloud-init');

export interface CloudInitFiles {
  userData: string;
  networkConfig: string;
  metaData: string;
}

export type CloudInitPart = 'user' | 'network' | 'meta';

export const PARTS: readonly CloudInitPart[] = ['user', 'network', 'meta'];

export interface RenderOptions {
  /** MAC address of net0; the network entry matches on it. */
  mac: string | undefined;
  templatesDir?: string;
}

type Yaml = typeof import('yaml');
let yamlModule: Yaml | undefined;

/** The yaml package is loaded only by runs that render (not by start/stop/status). */
async function yaml(): Promise<Yaml> {
  yamlModule ??= await loadYaml();
  return yamlModule;
}

async function baseDocument(dir: string, file: string): Promise<Record<string, unknown>> {
  const { parse } = await yaml();
  const doc = parse(fs.readFileSync(path.join(dir, file), 'utf8')) as unknown;
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${path.join(dir, file)}: expected a YAML mapping`);
  return doc as Record<string, unknown>;
}

export async function renderCloudInit(spec: VmSpec, options: RenderOptions): Promise<CloudInitFiles> {
  const dir = options.templatesDir ?? CLOUD_INIT_DIR;
  const { stringify } = await yaml();
  // cloud-init reads YAML 1.1 (PyYAML): there `yes`, `on` and an all-digit
  // MAC such as 52:54:00:12:34:56 are not strings unless quoted.
  const print = (doc: unknown) => stringify(doc, { lineWidth: 0, version: '1.1' });

  const user = await baseDocument(dir, 'user-data.yaml');
  user.hostname = spec.name;
  if (spec.searchdomain) user.fqdn = `${spec.name}.${spec.searchdomain}`;
  if (spec.user) {
    user.users = [
      {
        name: spec.user,
        groups: ['sudo'],
        shell: '/bin/bash',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: true,
      },
    ];
  }
  const packages = Array.isArray(user.packages) ? [...(user.packages as unknown[])] : [];
  if (spec.nfsVolumes.length > 0 && !packages.includes('nfs-common')) packages.push('nfs-common');
  if (packages.length > 0) user.packages = packages;
  const userData = `#cloud-config\n${print(user)}`;

  const network = await baseDocument(dir, 'network-config.yaml');
  const nic: Record<string, unknown> = {};
  if (options.mac) {
    nic.match = { macaddress: options.mac };
    nic['set-name'] = 'eth0';
  }
  if (spec.ip === 'dhcp') nic.dhcp4 = true;
  else {
    nic.dhcp4 = false;
    nic.addresses = [spec.ip];
    if (spec.gw) nic.routes = [{ to: 'default', via: spec.gw }];
  }
  const nameservers: Record<string, unknown> = {};
  if (spec.nameservers) nameservers.addresses = spec.nameservers.split(' ');
  if (spec.searchdomain) nameservers.search = [spec.searchdomain];
  if (Object.keys(nameservers).length > 0) nic.nameservers = nameservers;
  const ethernets = typeof network.ethernets === 'object' && network.ethernets !== null ? { ...(network.ethernets as Record<string, unknown>) } : {};
  ethernets.eth0 = nic;
  network.ethernets = ethernets;
  const networkConfig = print(network);

  const meta = await baseDocument(dir, 'meta-data.yaml');
  meta['instance-id'] = `iid-phoenix-${spec.vmid}-${digest(`${userData}\n${networkConfig}`)}`;
  meta['local-hostname'] = spec.name;
  const metaData = print(meta);

  return { userData, networkConfig, metaData };
}

export function partContent(files: CloudInitFiles, part: CloudInitPart): string {
  return part === 'user' ? files.userData : part === 'network' ? files.networkConfig : files.metaData;
}

/** Snippet file names: one set per VM, so a clone never points at its template's files. */
export function snippetName(vmid: string, part: CloudInitPart): string {
  return `phoenix-${vmid}-${part}.yaml`;
}

/** `cicustom` naming the three snippets on one storage. */
export function cicustomValue(storage: string, vmid: string): string {
  return PARTS.map((part) => `${part}=${storage}:snippets/${snippetName(vmid, part)}`).join(',');
}

/** FNV-1a, 32 bits, as 8 hex digits: a stable fingerprint, not a security measure. */
export function digest(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
