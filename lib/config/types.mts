// TypeScript shapes of the five manifests. They mirror etc/schemas/*.schema.json:
// a value typed here has passed that schema, so optional keys are optional in
// both places and a reader never has to re-check a type the schema enforced.
// Keys the upstream files carry but no script reads are kept (typed loosely) so
// an upstream manifest loads unchanged.

/** A guest id written as a string of digits ("101"), as in `dependencies` and `clone_from_ctid`. */
export type GuestId = string;

// ---------------------------------------------------------------- shared

export type FirewallRuleType = 'in' | 'out' | 'forward';
export type FirewallAction = 'ACCEPT' | 'DROP' | 'REJECT';

export interface FirewallRule {
  type: FirewallRuleType;
  action: FirewallAction;
  /** tcp, udp, icmp, icmpv6, ... or a protocol number. Required when `port`/`sport` is set. */
  proto?: string;
  /** Address, CIDR, range, alias or +ipset; comma-separated lists allowed. */
  source?: string;
  dest?: string;
  /** Destination port(s): "443", "80,443", "8000:8100". */
  port?: string;
  sport?: string;
  iface?: string;
  macro?: string;
  log?: 'emerg' | 'alert' | 'crit' | 'err' | 'warning' | 'notice' | 'info' | 'debug' | 'nolog';
  comment?: string;
}

export interface GuestFirewall {
  enabled: boolean;
  rules?: FirewallRule[];
}

export interface TraefikService {
  /** DNS label: the service is published as <name>.<domain_name>. */
  name: string;
  port: number;
  scheme?: 'http' | 'https';
}

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

export interface TestCase {
  name: string;
  type: string;
  path: string;
}

export interface HypervisorConfig {
  $schema?: string;
  version?: string;
  author?: string;
  domain_name: string;
  timezone?: string;
  users?: { username?: string; password_hash?: string; sudo_access?: boolean; ssh_public_key?: string };
  core_paths?: { lxc_config_file?: string; vm_config_file?: string; [legacy: string]: string | undefined };
  network?: HostNetwork;
  docker?: { portainer_server_image?: string; portainer_agent_image?: string };
  nfs?: { exports?: NfsExport[] };
  samba?: { user?: string; password_file?: string; shares?: SambaShare[] };
  zfs?: {
    arc_max_gb?: number;
    settings?: { allow_destructive_operations?: boolean | 'true' | 'false' };
    pools?: ZfsPool[];
    datasets?: ZfsDataset[];
  };
  shared_zfs_volumes?: Record<string, unknown>[];
  proxmox_storage_ids?: Record<string, string>;
  mount_point_base?: string;
  proxmox_defaults?: Record<string, unknown>;
  tests?: Record<string, TestCase[]>;
  nvidia_driver?: { install?: boolean; version?: string; runfile_url?: string; cuda_version?: string; install_vllm_libs?: boolean };
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

// ---------------------------------------------------------------- LXC

export type LxcFeature =
  | 'base_setup'
  | 'trusted_ca'
  | 'step_cli'
  | 'step_ca'
  | 'traefik'
  | 'docker'
  | 'portainer'
  | 'nvidia'
  | 'vllm'
  | 'ollama'
  | 'python_api_service'
  | 'dns_server'
  | 'nat_gateway';

/** One container interface (net0 or net1). */
export interface NetworkConfig {
  name: string;
  bridge: string;
  /** "dhcp", "manual" or an address with prefix length. */
  ip: string;
  gw?: string;
  hwaddr?: string;
  nameserver?: string;
  /** Space- or comma-separated list, passed to `pct set --nameserver`. */
  nameservers?: string;
  type?: 'bridge' | 'macvlan';
  parent?: string;
  tag?: number;
  mtu?: number;
  firewall?: boolean;
}

export interface MountPoint {
  host_path: string;
  container_path: string;
  owner_uid?: number;
  owner_gid?: number;
  read_only?: boolean;
}

export interface LxcVolume {
  name: string;
  pool: string;
  size_gb: number;
  mount_point: string;
}

export interface IdMap {
  type: 'uid' | 'gid';
  host_id: number;
  container_id: number;
  size: number;
}

export interface VllmEngineConfig {
  ModelConfig: { model: string; trust_remote_code?: boolean; dtype?: string; max_model_len?: number; [k: string]: unknown };
  CacheConfig?: { quantization?: string; gpu_memory_utilization?: number; [k: string]: unknown };
  ParallelConfig?: { tensor_parallel_size?: number; [k: string]: unknown };
  ServerConfig: { port: number; host?: string; served_model_name?: string; [k: string]: unknown };
}

export interface LxcConfig {
  name: string;
  is_template?: boolean;
  /** OS template: absolute path or `storage:vztmpl/file`. Used when there is no clone source. */
  template?: string;
  template_file?: string;
  clone_from_ctid?: GuestId;
  dependencies?: GuestId[];
  start_at_boot?: boolean;
  boot_order?: number;
  boot_delay?: number;
  memory_mb: number;
  swap_mb?: number;
  cores: number;
  storage_pool: string;
  storage_size_gb: number;
  network_config: NetworkConfig;
  secondary_network_config?: NetworkConfig;
  mac_address?: string;
  gpu_assignment?: string;
  portainer_role?: 'server' | 'agent' | 'none' | 'infrastructure';
  unprivileged?: boolean;
  features?: LxcFeature[];
  firewall?: GuestFirewall;
  application_script?: string;
  bootstrap_ca_url?: string;
  pct_options?: string[];
  lxc_options?: string[];
  mount_points?: MountPoint[];
  zfs_volumes?: LxcVolume[];
  volumes?: LxcVolume[];
  id_maps?: IdMap[];
  apparmor_profile?: string;
  apparmor_manages_nesting?: boolean;
  enable_lifecycle_snapshots?: boolean;
  template_snapshot_name?: string;
  traefik_service?: TraefikService;
  vllm_engine_config?: VllmEngineConfig;
  ports?: string[];
  /** Upstream's singular form; nothing reads it (see `warnings()`). */
  health_check?: { command: string; retries?: number; interval?: number };
  health_checks?: { name?: string; script: string; args?: string | string[] }[];
  tests?: Record<string, TestCase[]>;
  trigger_sync_on_completion?: boolean;
  public_interface?: { enabled?: boolean };
  dns_records?: { hostname: string; ip: string }[];
}

export interface LxcManifest {
  $schema?: string;
  nvidia_driver_version?: string;
  nvidia_repo_url?: string;
  nvidia_runfile_url?: string;
  /** The bash falls back to root-level keys for some lookups; only this one is used that way. */
  enable_lifecycle_snapshots?: boolean;
  lxc_configs: Record<GuestId, LxcConfig>;
}

// ---------------------------------------------------------------- VM

export type VmFeature = 'base_setup' | 'trusted_ca' | 'step_cli' | 'docker' | 'docker_proxy';

export interface VmNetworkConfig {
  /** "dhcp" or an address with prefix length; a static address needs `gw`. */
  ip: string;
  gw?: string;
  nameserver?: string;
  searchdomain?: string;
}

export interface NfsVolume {
  type: 'nfs';
  name?: string;
  server: string;
  path: string;
  mount_point: string;
  options?: string;
}

export interface VmConfig {
  vmid: number;
  name: string;
  is_template?: boolean;
  template_image?: string;
  template_snapshot_name?: string;
  clone_from_vmid?: number;
  cores?: number;
  memory_mb?: number;
  disk_size_gb?: number;
  storage_pool?: string;
  network_bridge?: string;
  start_at_boot?: boolean;
  boot_order?: number;
  boot_delay?: number;
  features?: VmFeature[];
  portainer_role?: 'primary' | 'agent' | 'none';
  swarm_role?: 'manager' | 'worker';
  node_labels?: string[];
  portainer_environment_name?: string;
  portainer_agent_hostname?: string;
  trigger_sync_on_completion?: boolean;
  dependencies?: GuestId[];
  traefik_service?: TraefikService;
  network_config?: VmNetworkConfig;
  user_config?: { username: string; [k: string]: unknown };
  volumes?: NfsVolume[];
  /** Stack names (keys of phoenix_stacks_config.json `docker_stacks`). */
  docker_stacks?: string[];
  firewall?: GuestFirewall;
  snapshots?: { 'pre-features'?: string; 'post-features'?: string };
  count?: number;
  qm_options?: string[];
  dns_records?: { hostname: string; ip: string }[];
  iptables_rules?: string[];
}

export interface VmDefaults {
  template?: string;
  cores: number;
  memory_mb: number;
  disk_size_gb?: number;
  storage_pool: string;
  network_bridge: string;
}

export interface VmManifest {
  $schema?: string;
  vm_defaults: VmDefaults;
  vms: VmConfig[];
}

// ---------------------------------------------------------------- stacks

export interface StackVariable {
  name: string;
  value: string;
}

export interface StackEnvironment {
  variables?: StackVariable[];
  files?: { source: string; destination_in_container: string }[];
  services?: Record<string, { traefik_labels?: string[] }>;
}

export interface StackConfig {
  description?: string;
  /** The compose template, relative to this manifest's directory (default stacks/<name>/docker-compose.yml; see lib/stacks/render.mts). */
  compose_file_path?: string;
  nginx_proxy?: { hostname?: string };
  environments: Record<string, StackEnvironment>;
}

export interface StacksManifest {
  $schema?: string;
  docker_stacks: Record<string, StackConfig>;
}

// ---------------------------------------------------------------- certificates

export interface CertificateEntry {
  common_name: string;
  sans?: string[];
  guest_id?: number;
  guest_type?: 'lxc' | 'vm';
  cert_type?: 'server' | 'client';
  cert_path: string;
  key_path: string;
  owner?: string;
  permissions?: string;
  include_ca?: boolean;
  /**
   * A command run on the host after the certificate changed: trusted input,
   * split into words and run without a shell (certificate-renewal-manager).
   */
  post_renewal_command?: string;
  /** Lifetime requested from the CA, a Go duration (default 24h). */
  not_after?: string;
  /** Renew when less than this is left, a Go duration (default 12h). */
  renew_before?: string;
  /** Where copies of the certificate, the key and the root CA go inside the guest. */
  guest_cert_path?: string;
  guest_key_path?: string;
  guest_ca_path?: string;
}

export type CertificateManifest = CertificateEntry[];

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
