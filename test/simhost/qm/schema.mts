// qm's parameter schema (a practical subset of qemu-server's confdesc),
// its commands and command groups, and which options a running VM only
// takes at its next start.

import type { Ctx } from '../cli.mts';
import { ToolExit } from '../state.mts';
import {
  anyValue,
  boolValue,
  dnsNameFormat,
  ipv4CidrRe,
  ipv4Re,
  macRe,
  propertyStringFormat,
  snapnameSpec,
  startupFormat,
  type CommandSpec,
  type OptSpec,
} from '../args.mts';
import { bool, commandSpec, resizeSize, storageId, str } from '../guest-common/schema.mts';
import { VM_DISK_KEY } from '../guests.mts';

export const NIC_MODELS = ['e1000', 'e1000e', 'rtl8139', 'virtio', 'vmxnet3', 'i82551', 'i82557b', 'i82559er', 'ne2k_isa', 'ne2k_pci', 'pcnet'];

const netFormat = (value: string): string | undefined => {
  let model = false;
  for (const part of value.split(',')) {
    if (part === '') continue;
    const [key, v] = part.includes('=') ? [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)] : [part, undefined];
    if (NIC_MODELS.includes(key)) {
      if (v !== undefined && !macRe.test(v)) return `format error\nmacaddr: value does not look like a valid MAC address`;
      model = true;
      continue;
    }
    if (key === 'model') {
      if (!v || !NIC_MODELS.includes(v)) return `format error\nmodel: value '${v}' does not have a value in the enumeration '${NIC_MODELS.join(', ')}'`;
      model = true;
      continue;
    }
    if (!['bridge', 'firewall', 'link_down', 'macaddr', 'mtu', 'queues', 'rate', 'tag', 'trunks'].includes(key)) return `invalid key in comma-separated list property: ${key}`;
  }
  return model ? undefined : 'format error\nmodel: property is missing and it is not optional';
};

const ipconfigFormat = propertyStringFormat({
  ip: (v) => (v === 'dhcp' || ipv4CidrRe.test(v) ? undefined : 'value does not look like a valid ipv4 network configuration'),
  gw: (v) => (ipv4Re.test(v) ? undefined : 'value does not look like a valid IPv4 address'),
  ip6: anyValue,
  gw6: anyValue,
});

const diskFormat = (value: string): string | undefined => (value.split(',')[0] === '' ? 'format error\nfile: property is missing and it is not optional' : undefined);

const VM_OPTIONS: Record<string, OptSpec> = {
  name: { type: 'string', format: dnsNameFormat },
  memory: { type: 'string', format: (v) => (/^(current=)?\d+$/.test(v) && Number(v.replace('current=', '')) >= 16 ? undefined : `value must have a minimum value of 16`) },
  balloon: { type: 'integer', min: 0 },
  cores: { type: 'integer', min: 1 },
  sockets: { type: 'integer', min: 1 },
  vcpus: { type: 'integer', min: 1 },
  cpu: { type: 'string' },
  cpulimit: { type: 'number', min: 0, max: 128 },
  cpuunits: { type: 'integer', min: 1, max: 262144 },
  numa: { type: 'boolean' },
  agent: { type: 'string', format: propertyStringFormat({ enabled: boolValue, fstrim_cloned_disks: boolValue, type: anyValue, freeze_fs_on_backup: boolValue }, { defaultKey: 'enabled' }) },
  boot: { type: 'string' },
  bootdisk: { type: 'string', format: (v) => (VM_DISK_KEY.test(v) ? undefined : `invalid drive name '${v}'`) },
  onboot: { type: 'boolean' },
  startup: { type: 'string', format: startupFormat },
  scsihw: { type: 'string', enum: ['lsi', 'lsi53c810', 'virtio-scsi-pci', 'virtio-scsi-single', 'megasas', 'pvscsi'] },
  vga: { type: 'string' },
  ostype: { type: 'string', enum: ['other', 'wxp', 'w2k', 'w2k3', 'w2k8', 'wvista', 'win7', 'win8', 'win10', 'win11', 'l24', 'l26', 'solaris'] },
  machine: { type: 'string' },
  bios: { type: 'string', enum: ['seabios', 'ovmf'] },
  kvm: { type: 'boolean' },
  tablet: { type: 'boolean' },
  hotplug: { type: 'string' },
  protection: { type: 'boolean' },
  template: { type: 'boolean' },
  lock: { type: 'string', enum: ['backup', 'clone', 'create', 'migrate', 'rollback', 'snapshot', 'snapshot-delete', 'suspending', 'suspended'] },
  description: { type: 'string', maxLength: 8192 },
  tags: { type: 'string' },
  args: { type: 'string' },
  hookscript: { type: 'string' },
  smbios1: { type: 'string' },
  vmgenid: { type: 'string' },
  meta: { type: 'string' },
  ciuser: { type: 'string' },
  cipassword: { type: 'string' },
  citype: { type: 'string', enum: ['configdrive2', 'nocloud', 'opennebula'] },
  cicustom: { type: 'string' },
  ciupgrade: { type: 'boolean' },
  nameserver: { type: 'string' },
  searchdomain: { type: 'string' },
  sshkeys: { type: 'string' },
  efidisk0: { type: 'string', format: diskFormat },
  tpmstate0: { type: 'string', format: diskFormat },
  rng0: { type: 'string' },
  parent: { type: 'string' },
  vmstate: { type: 'string' },
};

export function vmOption(name: string): OptSpec | undefined {
  const fixed = VM_OPTIONS[name];
  if (fixed) return fixed;
  const ranges: Array<[RegExp, number, OptSpec]> = [
    [/^net(\d+)$/, 32, { type: 'string', format: netFormat }],
    [/^ipconfig(\d+)$/, 32, { type: 'string', format: ipconfigFormat }],
    [/^scsi(\d+)$/, 31, { type: 'string', format: diskFormat }],
    [/^virtio(\d+)$/, 16, { type: 'string', format: diskFormat }],
    [/^sata(\d+)$/, 6, { type: 'string', format: diskFormat }],
    [/^ide(\d+)$/, 4, { type: 'string', format: diskFormat }],
    [/^serial(\d+)$/, 4, { type: 'string', format: (v) => (/^(socket|\/dev\/.+)$/.test(v) ? undefined : 'value does not match the regex pattern') }],
    [/^usb(\d+)$/, 14, { type: 'string' }],
    [/^hostpci(\d+)$/, 16, { type: 'string' }],
    [/^unused(\d+)$/, 256, { type: 'string' }],
  ];
  for (const [re, max, s] of ranges) {
    const m = re.exec(name);
    if (m && Number(m[1]) < max) return s;
  }
  return undefined;
}

const spec = (name: string, args: string[], params: Record<string, OptSpec>, extra?: (n: string) => OptSpec | undefined): CommandSpec => commandSpec('qm', name, args, params, extra);

const diskKeyEnum: OptSpec = { type: 'string', format: (v) => (VM_DISK_KEY.test(v) && !v.startsWith('unused') ? undefined : `value '${v}' does not have a value in the enumeration`) };

export const specs: Record<string, CommandSpec> = {
  list: spec('list', [], { full: bool }),
  status: spec('status', ['vmid'], { verbose: bool }),
  config: spec('config', ['vmid'], { current: bool, snapshot: snapnameSpec }),
  create: spec('create', ['vmid'], { archive: str, storage: storageId, force: bool, unique: bool, pool: str, start: bool, 'live-restore': bool, bwlimit: { type: 'integer', min: 0 } }, vmOption),
  clone: spec('clone', ['vmid', 'newid'], { name: { type: 'string', format: dnsNameFormat }, description: str, pool: str, snapname: snapnameSpec, storage: storageId, format: { type: 'string', enum: ['raw', 'qcow2', 'vmdk'] }, full: bool, target: str, bwlimit: { type: 'integer', min: 0 } }),
  set: spec('set', ['vmid'], { delete: str, revert: str, digest: { type: 'string', maxLength: 40 }, skiplock: bool, force: bool }, vmOption),
  start: spec('start', ['vmid'], { skiplock: bool, timeout: { type: 'integer', min: 0 }, machine: str, 'force-cpu': str }),
  stop: spec('stop', ['vmid'], { skiplock: bool, keepActive: bool, timeout: { type: 'integer', min: 0 }, 'overrule-shutdown': bool }),
  shutdown: spec('shutdown', ['vmid'], { skiplock: bool, keepActive: bool, timeout: { type: 'integer', min: 0 }, forceStop: bool }),
  reboot: spec('reboot', ['vmid'], { timeout: { type: 'integer', min: 0 } }),
  destroy: spec('destroy', ['vmid'], { purge: bool, skiplock: bool, 'destroy-unreferenced-disks': bool }),
  template: spec('template', ['vmid'], { disk: diskKeyEnum }),
  snapshot: spec('snapshot', ['vmid', 'snapname'], { snapname: snapnameSpec, description: str, vmstate: bool }),
  listsnapshot: spec('listsnapshot', ['vmid'], {}),
  delsnapshot: spec('delsnapshot', ['vmid', 'snapname'], { snapname: snapnameSpec, force: bool }),
  rollback: spec('rollback', ['vmid', 'snapname'], { snapname: snapnameSpec, start: bool }),
  unlock: spec('unlock', ['vmid'], {}),
  'disk import': spec('disk import', ['vmid', 'source', 'storage'], { source: str, storage: storageId, format: { type: 'string', enum: ['raw', 'qcow2', 'vmdk'] }, 'target-disk': str }),
  'disk resize': spec('disk resize', ['vmid', 'disk', 'size'], { disk: diskKeyEnum, size: resizeSize, digest: str, skiplock: bool }),
  'guest cmd': spec('guest cmd', ['vmid', 'command'], { command: { type: 'string', enum: ['fsfreeze-freeze', 'fsfreeze-status', 'fsfreeze-thaw', 'fstrim', 'get-fsinfo', 'get-host-name', 'get-memory-block-info', 'get-memory-blocks', 'get-osinfo', 'get-time', 'get-timezone', 'get-users', 'get-vcpus', 'info', 'network-get-interfaces', 'ping', 'shutdown', 'suspend-disk', 'suspend-hybrid', 'suspend-ram'] } }),
  'guest exec': spec('guest exec', ['vmid', 'extra-args'], { synchronous: bool, timeout: { type: 'integer', min: 0 }, 'pass-stdin': bool }),
  'guest exec-status': spec('guest exec-status', ['vmid', 'pid'], { pid: { type: 'integer' } }),
  'cloudinit update': spec('cloudinit update', ['vmid'], {}),
  'cloudinit dump': spec('cloudinit dump', ['vmid', 'type'], { type: { type: 'string', enum: ['user', 'network', 'meta'] } }),
};

const TOP = ['agent', 'clone', 'cloudinit', 'config', 'create', 'delsnapshot', 'destroy', 'disk', 'guest', 'importdisk', 'list', 'listsnapshot', 'reboot', 'resize', 'rollback', 'set', 'shutdown', 'snapshot', 'start', 'status', 'stop', 'template', 'unlock'];
const TOP_NOT_SIMULATED = ['cleanup', 'enroll-efi-keys', 'migrate', 'monitor', 'move-disk', 'move_disk', 'mtunnel', 'nbdstop', 'pending', 'remote-migrate', 'rescan', 'reset', 'resume', 'sendkey', 'showcmd', 'suspend', 'terminal', 'unlink', 'vncproxy', 'wait', 'vm-state'];
const GROUPS: Record<string, { simulated: string[]; notSimulated: string[] }> = {
  guest: { simulated: ['cmd', 'exec', 'exec-status'], notSimulated: ['passwd'] },
  disk: { simulated: ['import', 'resize'], notSimulated: ['move', 'rescan', 'unlink'] },
  cloudinit: { simulated: ['dump', 'update'], notSimulated: ['pending'] },
};
const ALIASES: Record<string, string[]> = { importdisk: ['disk', 'import'], resize: ['disk', 'resize'], agent: ['guest', 'cmd'] };

// Hardware a running VM only picks up on its next start.
export const NOT_HOTPLUGGABLE = /^(cores|sockets|vcpus|cpu|memory|balloon|numa|agent|bios|machine|scsihw|vga|ostype|args|serial\d+|hostpci\d+|usb\d+|kvm|tablet|efidisk0|tpmstate0|rng0|smbios1)$/;

/** The command words (`guest exec`, `disk resize` …), abbreviations and aliases resolved as qm's CLI handler does. */
export function resolveCommand(ctx: Ctx): { command: string; rest: string[] } {
  const top = ctx.verb(ctx.argv[0], TOP, TOP_NOT_SIMULATED);
  let words = [top];
  let rest = ctx.argv.slice(1);
  if (ALIASES[top]) words = ALIASES[top]!;
  const group = GROUPS[words[0]!];
  if (group && words.length === 1) {
    const sub = rest[0];
    if (sub === undefined) throw new ToolExit(255, `ERROR: incomplete command 'qm ${top}'\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]\n`);
    const all = [...group.simulated, ...group.notSimulated];
    const match = all.includes(sub) ? sub : all.filter((v) => v.startsWith(sub)).length === 1 ? all.find((v) => v.startsWith(sub)) : undefined;
    if (!match) throw new ToolExit(255, `ERROR: unknown command 'qm ${top} ${sub}'\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]\n`);
    if (group.notSimulated.includes(match)) throw new ToolExit(255, `simhost: 'qm ${top} ${match}' is not simulated\n`);
    words = [words[0]!, match];
    rest = rest.slice(1);
  }
  return { command: words.join(' '), rest };
}
