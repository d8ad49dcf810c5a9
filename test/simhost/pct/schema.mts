// pct's parameter schema: pve-container's confdesc (as far as it matters
// here), the commands and their options, and which options a running
// container only takes at its next start.

import {
  boolValue,
  configIdFormat,
  dnsNameFormat,
  intValue,
  ipv4CidrRe,
  ipv4Re,
  macRe,
  parseSize,
  propertyStringFormat,
  snapnameSpec,
  startupFormat,
  anyValue,
  type CommandSpec,
  type OptSpec,
} from '../args.mts';
import { bool, commandSpec, resizeSize, storageId, str } from '../guest-common/schema.mts';

const netKeys: Record<string, (v: string) => string | undefined> = {
  name: (v) => (/^[a-zA-Z0-9_.-]{1,16}$/.test(v) ? undefined : `value does not match the regex pattern`),
  bridge: anyValue,
  firewall: boolValue,
  gw: (v) => (ipv4Re.test(v) ? undefined : `value does not look like a valid IPv4 address`),
  gw6: anyValue,
  hwaddr: (v) => (macRe.test(v) ? (parseInt(v.slice(0, 2), 16) & 1 ? 'MAC address is not unicast' : undefined) : 'value does not look like a valid MAC address'),
  ip: (v) => (v === 'dhcp' || v === 'manual' || ipv4CidrRe.test(v) ? undefined : `value does not look like a valid ipv4 network configuration`),
  ip6: anyValue,
  link_down: boolValue,
  mtu: intValue,
  rate: anyValue,
  tag: (v) => (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 4094 ? undefined : `type check ('integer') failed - got '${v}'`),
  trunks: anyValue,
  type: (v) => (v === 'veth' ? undefined : `value '${v}' does not have a value in the enumeration 'veth'`),
  'host-managed': boolValue,
};

const mountKeys: Record<string, (v: string) => string | undefined> = {
  volume: anyValue,
  mp: (v) => (v.startsWith('/') ? undefined : 'mount point path must be absolute'),
  acl: boolValue,
  backup: boolValue,
  mountoptions: anyValue,
  quota: boolValue,
  replicate: boolValue,
  ro: boolValue,
  shared: boolValue,
  size: (v) => (parseSize(v) !== undefined ? undefined : 'unable to parse size'),
};

const featureKeys: Record<string, (v: string) => string | undefined> = {
  mount: anyValue,
  nesting: boolValue,
  keyctl: boolValue,
  fuse: boolValue,
  mknod: boolValue,
  force_rw_sys: boolValue,
};

const CT_OPTIONS: Record<string, OptSpec> = {
  lock: { type: 'string', enum: ['backup', 'create', 'destroyed', 'disk', 'fstrim', 'migrate', 'mounted', 'rollback', 'snapshot', 'snapshot-delete'] },
  onboot: { type: 'boolean' },
  startup: { type: 'string', format: startupFormat },
  template: { type: 'boolean' },
  arch: { type: 'string', enum: ['amd64', 'i386', 'arm64', 'armhf', 'riscv32', 'riscv64'] },
  ostype: { type: 'string', enum: ['debian', 'devuan', 'ubuntu', 'centos', 'fedora', 'opensuse', 'archlinux', 'alpine', 'gentoo', 'nixos', 'unmanaged'] },
  console: { type: 'boolean' },
  tty: { type: 'integer', min: 0, max: 6 },
  cores: { type: 'integer', min: 1, max: 8192 },
  cpulimit: { type: 'number', min: 0, max: 8192 },
  cpuunits: { type: 'integer', min: 0, max: 500000 },
  memory: { type: 'integer', min: 16 },
  swap: { type: 'integer', min: 0 },
  hostname: { type: 'string', maxLength: 255, format: dnsNameFormat },
  description: { type: 'string', maxLength: 8192 },
  searchdomain: { type: 'string' },
  nameserver: {
    type: 'string',
    format: (v) => (v.split(/[ ,;]+/).filter(Boolean).every((ip) => ipv4Re.test(ip) || /^[0-9a-f:]+(%\w+)?$/i.test(ip)) && v.trim() !== '' ? undefined : `value does not look like a valid IP address`),
  },
  timezone: { type: 'string' },
  rootfs: { type: 'string', format: propertyStringFormat(mountKeys, { defaultKey: 'volume', required: ['volume'] }) },
  parent: { type: 'string', format: configIdFormat },
  snaptime: { type: 'integer', min: 0 },
  cmode: { type: 'string', enum: ['shell', 'console', 'tty'] },
  entrypoint: { type: 'string' },
  protection: { type: 'boolean' },
  unprivileged: { type: 'boolean' },
  features: { type: 'string', format: propertyStringFormat(featureKeys) },
  env: { type: 'string' },
  hookscript: { type: 'string' },
  tags: { type: 'string' },
  debug: { type: 'boolean' },
};

const netSpec: OptSpec = { type: 'string', format: propertyStringFormat(netKeys, { required: ['name'] }) };
const mpSpec: OptSpec = { type: 'string', format: propertyStringFormat(mountKeys, { defaultKey: 'volume', required: ['volume', 'mp'] }) };
const devSpec: OptSpec = { type: 'string' };
const unusedSpec: OptSpec = { type: 'string' };

export function ctOption(name: string): OptSpec | undefined {
  const fixed = CT_OPTIONS[name];
  if (fixed) return fixed;
  let m = /^net(\d+)$/.exec(name);
  if (m && Number(m[1]) < 32) return netSpec;
  m = /^mp(\d+)$/.exec(name);
  if (m && Number(m[1]) < 256) return mpSpec;
  m = /^unused(\d+)$/.exec(name);
  if (m && Number(m[1]) < 256) return unusedSpec;
  m = /^dev(\d+)$/.exec(name);
  if (m && Number(m[1]) < 256) return devSpec;
  return undefined;
}

const spec = (name: string, args: string[], params: Record<string, OptSpec>, extra?: (n: string) => OptSpec | undefined): CommandSpec => commandSpec('pct', name, args, params, extra);

export const specs: Record<string, CommandSpec> = {
  list: spec('list', [], {}),
  status: spec('status', ['vmid'], { verbose: bool }),
  config: spec('config', ['vmid'], { current: bool, snapshot: snapnameSpec }),
  create: spec(
    'create',
    ['vmid', 'ostemplate'],
    {
      ostemplate: { type: 'string', maxLength: 255 },
      password: str,
      storage: storageId,
      force: bool,
      restore: bool,
      unique: bool,
      pool: str,
      'ignore-unpack-errors': bool,
      'ssh-public-keys': str,
      bwlimit: { type: 'number', min: 0 },
      start: bool,
      'ha-managed': bool,
    },
    ctOption,
  ),
  clone: spec('clone', ['vmid', 'newid'], {
    hostname: { type: 'string', format: dnsNameFormat },
    description: str,
    pool: str,
    snapname: snapnameSpec,
    storage: storageId,
    full: bool,
    target: str,
    bwlimit: { type: 'number', min: 0 },
  }),
  set: spec('set', ['vmid'], { delete: str, revert: str, digest: { type: 'string', maxLength: 40 } }, ctOption),
  start: spec('start', ['vmid'], { skiplock: bool, debug: bool }),
  stop: spec('stop', ['vmid'], { skiplock: bool, 'overrule-shutdown': bool }),
  shutdown: spec('shutdown', ['vmid'], { timeout: { type: 'integer', min: 0 }, forceStop: bool }),
  reboot: spec('reboot', ['vmid'], { timeout: { type: 'integer', min: 0 } }),
  destroy: spec('destroy', ['vmid'], { force: bool, purge: bool, 'destroy-unreferenced-disks': bool }),
  template: spec('template', ['vmid'], {}),
  resize: spec('resize', ['vmid', 'disk', 'size'], {
    disk: { type: 'string', format: (v) => (/^(rootfs|mp\d+)$/.test(v) ? undefined : `value '${v}' does not have a value in the enumeration 'rootfs, mp0, mp1, …'`) },
    size: resizeSize,
    digest: str,
  }),
  snapshot: spec('snapshot', ['vmid', 'snapname'], { snapname: snapnameSpec, description: str }),
  listsnapshot: spec('listsnapshot', ['vmid'], {}),
  delsnapshot: spec('delsnapshot', ['vmid', 'snapname'], { snapname: snapnameSpec, force: bool }),
  rollback: spec('rollback', ['vmid', 'snapname'], { snapname: snapnameSpec, start: bool }),
  unlock: spec('unlock', ['vmid'], {}),
  exec: spec('exec', ['vmid', 'extra-args'], { 'keep-env': bool }),
  push: spec('push', ['vmid', 'file', 'destination'], { file: str, destination: str, perms: str, user: str, group: str }),
  pull: spec('pull', ['vmid', 'path', 'destination'], { path: str, destination: str, perms: str, user: str, group: str }),
};

export const NOT_SIMULATED = ['console', 'cpusets', 'df', 'enter', 'fsck', 'fstrim', 'migrate', 'mount', 'move-volume', 'move_volume', 'pending', 'remote-migrate', 'rescan', 'restore', 'resume', 'suspend', 'unmount'];

// Options a running container cannot take live; they wait in [pve:pending].
export const NOT_HOTPLUGGABLE = /^(features|arch|ostype|tty|console|cmode|entrypoint|env|hookscript|debug|dev\d+|rootfs)$/;
