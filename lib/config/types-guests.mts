// The shapes of the LXC and VM manifests (phoenix_lxc_configs.json,
// phoenix_vm_configs.json), as their schemas accept them.

import type { GuestFirewall, GuestId, TestCase, TraefikService } from './types-common.mts';

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
