// TypeScript shapes of the five manifests. They mirror etc/schemas/*.schema.json:
// a value typed here has passed that schema, so optional keys are optional in
// both places and a reader never has to re-check a type the schema enforced.
// Keys the upstream files carry but no script reads are kept (typed loosely) so
// an upstream manifest loads unchanged.


import type { FirewallAction, FirewallRule, GuestId, TestCase } from './types-common.mts';
import type { LxcConfig, LxcManifest, VmConfig, VmManifest } from './types-guests.mts';
import type { CertificateEntry, StacksManifest } from './types-services.mts';

export type * from './types-common.mts';
export type * from './types-guests.mts';
export type * from './types-services.mts';

// ---------------------------------------------------------------- hypervisor

export type GatewayMode = 'hybrid' | 'passthrough' | 'mtls';

/** The TLS topology of the Nginx gateway (docs/pki-and-gateway.md). */
export interface GatewayConfig {
  mode: GatewayMode;
  /** SNIs forwarded as raw TCP to Traefik instead of being terminated by nginx. */
  passthrough_snis?: string[];
  /** Forward ClientHellos with ALPN acme-tls/1 to Traefik (tls-alpn-01). */
  acme_tls_alpn?: boolean;
  /** The name nginx verifies on Traefik's mesh certificate (proxy_ssl_name). */
  mesh_server_name?: string;
  /** Traefik's mTLS entrypoint port. */
  mesh_port?: number;
  /** common_name of the client certificate nginx presents to the mesh. */
  client_certificate?: string;
  /** Traefik's log level; unset, the template's level capped at INFO. */
  traefik_log_level?: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL' | 'PANIC';
}

export interface PortainerApiConfig {
  admin_user: string;
  /** File holding the admin password (preferred). */
  admin_password_file?: string;
  /** Deprecated inline password from the upstream format; `warnings()` reports it. */
  admin_password?: string;
  portainer_hostname: string;
  api_key?: string | null;
  api_key_file?: string;
}

export interface HostInterface {
  name?: string;
  /** Physical NIC(s) enslaved to the bridge (the bash hard-coded enp6s0). */
  bridge_ports?: string;
  address?: string;
  gateway?: string;
  dns_nameservers?: string[];
}

export interface HostNetwork {
  external_registry_url?: string;
  portainer_server_ip?: string;
  portainer_server_port?: number;
  portainer_agent_port?: number;
  interfaces?: HostInterface;
  default_subnet?: string;
  nfs_server?: string;
  fallback_dns?: string;
  public_bridge?: string;
  macvlan_vlan_tag?: number;
  public_vlan_tag?: number;
  internal_bridge?: { name: string; subnet: string; gateway?: string };
  hostname?: string;
  workgroup?: string;
}

export interface NfsExport {
  path: string;
  clients: string[];
  options?: string[];
}

export interface SambaShare {
  name: string;
  path: string;
  options?: string;
  valid_users?: string[];
  browsable?: boolean;
  read_only?: boolean;
  guest_ok?: boolean;
}

export interface ZfsPool {
  name: string;
  raid_level: 'single' | 'stripe' | 'mirror' | 'RAIDZ1' | 'RAIDZ2' | 'RAIDZ3' | 'raidz1' | 'raidz2' | 'raidz3';
  disks: string[];
}

export interface ZfsDataset {
  name: string;
  pool: string;
  /** "k=v,k=v" */
  properties?: string;
  proxmox_storage_type?: 'zfspool' | 'dir';
  proxmox_content_type?: string;
  storage_class?: string;
}

/** One entry of shared_zfs_volumes; `pool` is the Proxmox storage the volume is allocated on. */
export interface SharedZfsVolume {
  pool: string;
  size_gb: number;
}

export interface HypervisorConfig {
  $schema?: string;
  version?: string;
  author?: string;
  domain_name: string;
  timezone?: string;
  users?: { username?: string; password_hash?: string; sudo_access?: boolean; ssh_public_key?: string };
  /** The operator's login (the bash's hard-coded `heads`); password set once, when the user is created. */
  operator_user?: { username?: string; password_hash?: string; password_file?: string };
  core_paths?: { lxc_config_file?: string; vm_config_file?: string; [legacy: string]: string | undefined };
  network?: HostNetwork;
  docker?: { portainer_server_image?: string; portainer_agent_image?: string };
  nfs?: { exports?: NfsExport[] };
  /** The Samba password: `password_file` (root-owned, mode 0600) or, with a config warning, `password` inline. */
  samba?: { user?: string; password?: string; password_file?: string; shares?: SambaShare[] };
  zfs?: {
    arc_max_gb?: number;
    settings?: { allow_destructive_operations?: boolean | 'true' | 'false' };
    pools?: ZfsPool[];
    datasets?: ZfsDataset[];
  };
  /** Volumes for several guests, keyed by name (the bash's shape): `pvesm alloc <pool> 99999 vm-99999-disk-<name> <size_gb>G`. */
  shared_zfs_volumes?: Record<string, SharedZfsVolume>;
  proxmox_storage_ids?: Record<string, string>;
  mount_point_base?: string;
  proxmox_defaults?: Record<string, unknown>;
  tests?: Record<string, TestCase[]>;
  nvidia_driver?: { install?: boolean; version?: string; runfile_url?: string; cuda_version?: string; install_vllm_libs?: boolean };
  /** VFIO passthrough: the IOMMU on the kernel command line, the vfio modules, and the PCI ids vfio-pci claims ("vendor:device"). */
  vfio?: { enabled?: boolean; device_ids?: string[] };
  /** AppArmor: extra parents of home directories, added to @{HOMEDIRS} in /etc/apparmor.d/tunables/home.d/phoenix. */
  apparmor?: { home_dirs?: string[] };
  behavior?: Record<string, boolean>;
  shared_volumes?: Record<string, { host_path?: string; mounts?: Record<GuestId, string> }>;
  firewall?: {
    enabled?: boolean;
    default_input_policy?: FirewallAction;
    default_output_policy?: FirewallAction;
    global_firewall_rules?: FirewallRule[];
  };
  portainer_api?: PortainerApiConfig;
  vm_defaults?: { ubuntu_release: string };
  dns_server?: {
    enabled?: boolean;
    upstream_servers?: string[];
    /** Zones answered only locally (never forwarded), besides domain_name. */
    authoritative_zones?: string[];
    /** Where dnsmasq answers; default 127.0.0.1, the host address and the internal bridge gateway. */
    listen_addresses?: string[];
    /** Extra host records; a name without a dot is <name>.<domain_name>. */
    records?: { hostname: string; ip: string }[];
  };
  step_ca?: {
    ctid?: GuestId;
    root_ca_name?: string;
    intermediate_ca_name?: string;
    dns_name?: string;
    provisioner_name?: string;
    ca_url?: string;
    root_ca_file?: string;
    provisioner_password_file?: string;
  };
  gateway?: GatewayConfig;
}

// ---------------------------------------------------------------- the loaded manifests

export interface ConfigPaths {
  hypervisor: string;
  lxc: string;
  vm: string;
  stacks: string;
  certificates: string;
}

export type ManifestKind = keyof ConfigPaths;

export interface ManifestTypes {
  hypervisor: HypervisorConfig;
  lxc: LxcManifest;
  vm: VmManifest;
  stacks: StacksManifest;
  certificates: CertificateEntry[];
}

export type GuestRef =
  | { kind: 'lxc'; id: string; config: LxcConfig }
  | { kind: 'vm'; id: string; config: VmConfig };

/** One problem in one file; `pointer` is a JSON pointer ("" for the whole file). */
export interface ConfigIssue {
  file: string;
  pointer: string;
  message: string;
}

export type ConfigWarning = ConfigIssue;

/**
 * The manifests of one path set. Each property reads and validates its file on
 * first access and throws ConfigError when it is missing or invalid. The
 * objects are shared by every caller in the process: treat them as read-only.
 */
export interface PhoenixConfig {
  readonly paths: Readonly<ConfigPaths>;
  readonly hypervisor: HypervisorConfig;
  readonly lxc: LxcManifest;
  readonly vm: VmManifest;
  readonly stacks: StacksManifest;
  readonly certificates: CertificateEntry[];
  /** CTIDs sorted as strings, like jq's `keys[]` in the bash. */
  lxcIds(): string[];
  /** VMIDs as strings, in file order. */
  vmIds(): string[];
  /** The guest with this id; a container wins over a VM, as in phoenix-cli. */
  guest(id: string | number): GuestRef | undefined;
  /** Cross-file checks (clone sources, dependencies, duplicate ids and addresses, ...). */
  validateReferences(): void;
  /** Accepted but unwise content: clear-text secrets, keys nothing reads. */
  warnings(): ConfigWarning[];
}
