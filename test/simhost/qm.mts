// The simulated `qm`, after qemu-server (PVE::API2::Qemu, PVE::CLI::qm,
// PVE::QemuServer::Agent). A VM has a config file, a run state, disks on
// the storages, a file tree for the guest agent to act on, and a guest
// agent that answers once the VM has been up for agent_delay_ms.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  anyValue,
  boolValue,
  dnsNameFormat,
  formatSize,
  ipv4CidrRe,
  ipv4Re,
  macRe,
  parseCommand,
  parseSize,
  propertyStringFormat,
  snapnameSpec,
  startupFormat,
  usage,
  vmidSpec,
  type CommandSpec,
  type OptSpec,
} from './args.mts';
import type { Ctx } from './cli.mts';
import { copyGuestTree, GuestFs, guestFsDir, populateGuest, removeGuestTree, runCommand } from './guestfs.mts';
import {
  applyPending,
  checkLock,
  checkRollback,
  prepareSnapshot,
  checkSnapshotDelete,
  lockedTask,
  checkProtection,
  cloneFirewallConf,
  createSnapshot,
  deleteSnapshot,
  diskSizeOption,
  guestVolumes,
  isRunning,
  isTemplate,
  loadGuest,
  markRunning,
  markStopped,
  nextUnused,
  guestConfigText,
  randomMac,
  removeFirewallConf,
  replaceVolume,
  rollbackSnapshot,
  runtimeOf,
  snapshotTree,
  typeWord,
  VM_DISK_KEY,
} from './guests.mts';
import { agentDelayMs, takeExecRule, timeScale } from './inject.mts';
import { freeGuestVolumes, readsStdin, removeStub } from './pct.mts';
import { emptySection, guestKindOf, listGuestIds, parsePropertyString, readConfigFile, writeConfigFile, type GuestConfig } from './pveconf.mts';
import { allocDisk, convertToBase, findVolume, linkedClone, listVolumes, parseVolid, setVolumeSize, storageOf, volumeForPath, volumeSize } from './storage.mts';
import { die, loadRuntime, sleepSync, ToolExit, updateRuntime, type Runtime } from './state.mts';
import './programs/index.mts';

// ---------------------------------------------------------------------------
// Parameter schema (a practical subset of qemu-server's confdesc)

const NIC_MODELS = ['e1000', 'e1000e', 'rtl8139', 'virtio', 'vmxnet3', 'i82551', 'i82557b', 'i82559er', 'ne2k_isa', 'ne2k_pci', 'pcnet'];

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

function vmOption(name: string): OptSpec | undefined {
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

const bool: OptSpec = { type: 'boolean' };
const str: OptSpec = { type: 'string' };
const storageId: OptSpec = { type: 'string', format: (v) => (/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? undefined : `storage ID '${v}' contains illegal characters`) };

function spec(name: string, args: string[], params: Record<string, OptSpec>, extra?: (n: string) => OptSpec | undefined): CommandSpec {
  return { name: `qm ${name}`, args, param: (n) => (n === 'vmid' || n === 'newid' ? vmidSpec : params[n] ?? extra?.(n)) };
}

const diskKeyEnum: OptSpec = { type: 'string', format: (v) => (VM_DISK_KEY.test(v) && !v.startsWith('unused') ? undefined : `value '${v}' does not have a value in the enumeration`) };

const specs: Record<string, CommandSpec> = {
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
  'disk resize': spec('disk resize', ['vmid', 'disk', 'size'], { disk: diskKeyEnum, size: { type: 'string', format: (v) => (/^\+?\d+(\.\d+)?[KMGT]?$/.test(v) ? undefined : 'value does not match the regex pattern') }, digest: str, skiplock: bool }),
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
const NOT_HOTPLUGGABLE = /^(cores|sockets|vcpus|cpu|memory|balloon|numa|agent|bios|machine|scsihw|vga|ostype|args|serial\d+|hostpci\d+|usb\d+|kvm|tablet|efidisk0|tpmstate0|rng0|smbios1)$/;

function resolve(ctx: Ctx): { command: string; rest: string[] } {
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

export function runQm(ctx: Ctx): void {
  const { command, rest } = resolve(ctx);
  const p = parseCommand(specs[command]!, rest);
  const vmid = p.args.vmid!;
  switch (command) {
    case 'list':
      return list(ctx);
    case 'status':
      ctx.begin();
      return status(ctx, vmid, p.opts.verbose === '1');
    case 'config':
      ctx.begin();
      return ctx.out(guestConfigText(ctx, 'qemu', vmid, p.opts.snapshot, p.opts.current === '1'));
    case 'create':
      return create(ctx, vmid, p.opts, p.order);
    case 'clone':
      return clone(ctx, vmid, p.args.newid!, p.opts);
    case 'set':
      return set(ctx, vmid, p.opts, p.order);
    case 'start':
      return start(ctx, vmid, p.opts.skiplock === '1');
    case 'stop':
    case 'shutdown':
      return stop(ctx, vmid);
    case 'reboot':
      return reboot(ctx, vmid);
    case 'destroy':
      return destroy(ctx, vmid, p.opts);
    case 'template':
      return template(ctx, vmid);
    case 'snapshot': {
      const name = p.args.snapname!;
      if (name === 'current' || name === 'pending') die(`unable to use snapshot name '${name}' (reserved name)`);
      return lockedTask(
        ctx,
        'qemu',
        vmid,
        'snapshot',
        (rt, config) => prepareSnapshot(rt, 'qemu', config, name),
        (rt, config) => createSnapshot(ctx, rt, 'qemu', vmid, config, name, p.opts.description),
      );
    }
    case 'listsnapshot':
      ctx.begin();
      ctx.out(snapshotTree(loadGuest(ctx, 'qemu', vmid)));
      return;
    case 'delsnapshot':
      return lockedTask(
        ctx,
        'qemu',
        vmid,
        'snapshot-delete',
        (_rt, config) => checkSnapshotDelete('qemu', config, p.args.snapname!, p.opts.force === '1'),
        (rt, config) => deleteSnapshot(ctx, rt, 'qemu', vmid, config, p.args.snapname!),
      );
    case 'rollback':
      return rollback(ctx, vmid, p.args.snapname!, p.opts.start === '1');
    case 'unlock':
      return mutate(ctx, vmid, false, (_rt, config) => void delete config.main.props.lock);
    case 'disk import':
      return importDisk(ctx, vmid, p.args.source!, p.args.storage!, p.opts.format);
    case 'disk resize':
      return resize(ctx, vmid, p.args.disk!, p.args.size!);
    case 'guest cmd':
      return guestCmd(ctx, vmid, p.args.command!);
    case 'guest exec':
      return guestExec(ctx, vmid, p.extra, p.opts);
    case 'guest exec-status':
      return execStatus(ctx, vmid, p.args.pid!);
    case 'cloudinit update':
      ctx.begin([{ kind: 'qemu', vmid }]);
      loadGuest(ctx, 'qemu', vmid);
      return;
    case 'cloudinit dump':
      ctx.begin();
      return cloudinitDump(ctx, vmid, p.args.type!);
  }
}

/** Load, change and write a VM config under its lock and the state lock. */
function mutate(ctx: Ctx, vmid: string, inWorker: boolean, fn: (rt: Runtime, config: GuestConfig) => void): void {
  ctx.begin([{ kind: 'qemu', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, 'qemu', vmid, { inWorker });
    fn(rt, config);
    writeConfigFile(ctx.root, 'qemu', vmid, config);
  });
}

/** qemu-server's check_running: a missing config is its own error. */
function assertExists(ctx: Ctx, vmid: string, inWorker: boolean): void {
  if (!readConfigFile(ctx.root, 'qemu', vmid)) die(`unable to find configuration file for VM ${vmid} on node '${ctx.host.node}'`, inWorker ? 255 : 2);
}

// ---------------------------------------------------------------------------

function bootDiskSize(rt: Runtime, config: GuestConfig): number {
  const order = /order=([^,]+)/.exec(config.main.props.boot ?? '')?.[1]?.split(';') ?? [];
  const candidates = [...order, config.main.props.bootdisk ?? '', 'scsi0', 'virtio0', 'sata0', 'ide0'];
  for (const key of candidates) {
    const value = config.main.props[key];
    if (!value || /media=cdrom/.test(value)) continue;
    return diskSizeOption(value) ?? volumeSize(rt, value.split(',')[0]!) ?? 0;
  }
  return 0;
}

function memoryMb(config: GuestConfig): number {
  return Number((config.main.props.memory ?? '512').replace('current=', ''));
}

function list(ctx: Ctx): void {
  ctx.begin();
  const rt = loadRuntime(ctx.root);
  const ids = listGuestIds(ctx.root, 'qemu');
  if (ids.length === 0) return;
  let out = `${'VMID'.padStart(10)} ${'NAME'.padEnd(20)} ${'STATUS'.padEnd(10)} ${'MEM(MB)'.padEnd(10)} ${'BOOTDISK(GB)'.padStart(12)} ${'PID'.padEnd(10)}\n`;
  for (const id of ids) {
    const config = readConfigFile(ctx.root, 'qemu', id);
    if (!config) continue;
    const running = isRunning(rt, id, ctx.root, 'qemu');
    const name = config.main.props.name ?? `VM ${id}`;
    const disk = (bootDiskSize(rt, config) / 1024 ** 3).toFixed(2);
    out += `${id.padStart(10)} ${name.padEnd(20)} ${(running ? 'running' : 'stopped').padEnd(10)} ${String(memoryMb(config)).padEnd(10)} ${disk.padStart(12)} ${String(running ? rt.guests[id]?.pid ?? 0 : 0).padEnd(10)}\n`;
  }
  ctx.out(out);
}

function status(ctx: Ctx, vmid: string, verbose: boolean): void {
  const config = loadGuest(ctx, 'qemu', vmid);
  const rt = loadRuntime(ctx.root);
  const running = isRunning(rt, vmid, ctx.root, 'qemu');
  if (!verbose) {
    ctx.out(`status: ${running ? 'running' : 'stopped'}\n`);
    return;
  }
  const g = runtimeOf(rt, vmid);
  const stat: Record<string, string | number> = {
    cpus: Number(config.main.props.cores ?? 1) * Number(config.main.props.sockets ?? 1),
    disk: 0,
    diskread: 0,
    diskwrite: 0,
    maxdisk: bootDiskSize(rt, config),
    maxmem: memoryMb(config) * 1024 ** 2,
    mem: running ? 256 * 1024 ** 2 : 0,
    name: config.main.props.name ?? `VM ${vmid}`,
    netin: 0,
    netout: 0,
    qmpstatus: running ? 'running' : 'stopped',
    status: running ? 'running' : 'stopped',
    uptime: running && g.startedAt ? Math.floor((Date.now() - g.startedAt) / 1000) : 0,
    vmid: Number(vmid),
  };
  if (running && g.pid) stat.pid = g.pid;
  if (config.main.props.agent) stat.agent = 1;
  if (config.main.props.template === '1') stat.template = 1;
  ctx.out(Object.keys(stat).sort().map((k) => `${k}: ${stat[k]}\n`).join(''));
}

// ---------------------------------------------------------------------------
// create / clone / set

function sorted(obj: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => a.localeCompare(b)));
}

/** "virtio,bridge=vmbr0" → "virtio=BC:24:11:…,bridge=vmbr0,…" as qemu-server prints a NIC. */
function normalizeNic(value: string, previousMac?: string): string {
  let model = 'virtio';
  let mac: string | undefined;
  const rest: Record<string, string> = {};
  for (const part of value.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq === -1 ? part : part.slice(0, eq);
    const v = eq === -1 ? undefined : part.slice(eq + 1);
    if (NIC_MODELS.includes(key)) {
      model = key;
      mac = v;
    } else if (key === 'model') model = v!;
    else if (key === 'macaddr') mac = v;
    else rest[key] = v ?? '';
  }
  mac ??= previousMac ?? randomMac();
  const bridge = rest.bridge;
  delete rest.bridge;
  return [`${model}=${mac}`, ...(bridge !== undefined ? [`bridge=${bridge}`] : []), ...Object.entries(sorted(rest)).map(([k, v]) => `${k}=${v}`)].join(',');
}

/** Import a source image file into a new disk; returns the volid. */
function importFile(ctx: Ctx, rt: Runtime, vmid: string, source: string, storeid: string, format?: string): string {
  let size: number | undefined;
  let cloudImage = false;
  const mapped = source.startsWith('/') ? volumeForPath(rt, source) : findVolumeSafe(rt, source);
  if (mapped) {
    size = mapped.size;
    cloudImage = true;
  } else if (source.startsWith('/') && fs.existsSync(source) && fs.statSync(source).isFile()) {
    size = Math.max(fs.statSync(source).size, 1024 ** 2);
    cloudImage = true;
  }
  if (size === undefined) die(`${source}: non-existent or non-regular file`);
  const storage = storageOf(rt, storeid);
  if (!storage.content.includes('images')) die(`storage ${storeid} does not support vm images`);
  const fmt = storage.type === 'dir' || storage.type === 'nfs' ? format ?? 'raw' : 'raw';
  const volid = allocDisk(rt, storeid, vmid, size, 'vm', { format: fmt });
  if (cloudImage && !fs.existsSync(path.join(guestFsDir(ctx.root, vmid), 'etc', 'os-release'))) {
    populateGuest(ctx.root, vmid, 'ubuntu', 'ubuntu', true);
  }
  return volid;
}

function findVolumeSafe(rt: Runtime, volid: string) {
  if (!/^[a-z][a-z0-9\-_.]*[a-z0-9]:/i.test(volid)) return undefined;
  return rt.storage[parseVolid(volid).storeid] ? findVolume(rt, volid) : undefined;
}

/** Turn a disk option into config form, allocating or importing as PVE does. */
function prepareDisk(ctx: Ctx, rt: Runtime, vmid: string, value: string): string {
  const parts = value.split(',');
  const file = parts[0]!;
  const opts = parts.slice(1);
  if (file === 'none' || file === 'cdrom' || file.startsWith('/')) return value;
  const m = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i.exec(file);
  if (!m) die(`unable to parse drive options '${value}'`);
  const storeid = m[1]!;
  const rest = m[2]!;
  const storage = storageOf(rt, storeid);
  if (rest === 'cloudinit') {
    if (!storage.content.includes('images')) die(`storage '${storeid}' does not support vm images`);
    const name = storage.type === 'dir' || storage.type === 'nfs' ? 'vm-' + vmid + '-cloudinit.qcow2' : `vm-${vmid}-cloudinit`;
    const volid = allocDisk(rt, storeid, vmid, 4 * 1024 ** 2, 'vm', { name });
    return [volid, 'media=cdrom', ...opts.filter((o) => !o.startsWith('media='))].join(',');
  }
  const importFrom = opts.find((o) => o.startsWith('import-from='))?.slice('import-from='.length);
  if (/^\d+(\.\d+)?$/.test(rest)) {
    let volid: string;
    let bytes: number;
    if (importFrom !== undefined) {
      volid = importFile(ctx, rt, vmid, importFrom, storeid);
      bytes = volumeSize(rt, volid) ?? 0;
    } else {
      bytes = Math.round(Number(rest) * 1024 ** 3);
      volid = allocDisk(rt, storeid, vmid, bytes, 'vm');
    }
    const other = opts.filter((o) => !o.startsWith('import-from=') && !o.startsWith('size='));
    return [volid, ...other, `size=${formatSize(bytes)}`].join(',');
  }
  // An existing volume: an ISO, or an (unused) disk being attached.
  const vol = findVolume(rt, file);
  if (!vol) die(`volume '${file}' does not exist`);
  if (vol.content === 'iso') return /media=/.test(value) ? value : `${value},media=cdrom`;
  const other = opts.filter((o) => !o.startsWith('size='));
  return [file, ...other, `size=${formatSize(vol.size)}`].join(',');
}

function defaultBoot(props: Record<string, string>): string | undefined {
  const order: string[] = [];
  for (const key of Object.keys(props).sort()) {
    if (/^(scsi|virtio|sata|ide)\d+$/.test(key) && !/cloudinit/.test(props[key]!)) order.push(key);
  }
  for (const key of Object.keys(props).sort()) if (/^net\d+$/.test(key)) order.push(key);
  return order.length > 0 ? `order=${order.join(';')}` : undefined;
}

function create(ctx: Ctx, vmid: string, opts: Record<string, string>, order: string[]): void {
  if (opts.archive) die('simhost: qm create --archive (restore) is not simulated');
  const release = ctx.lockGuest({ kind: 'qemu', vmid });
  try {
    updateRuntime(ctx.root, () => {
      const existing = guestKindOf(ctx.root, vmid);
      if (existing) die(`unable to create VM ${vmid} - ${typeWord(existing)} ${vmid} already exists on node '${ctx.host.node}'`);
      writeConfigFile(ctx.root, 'qemu', vmid, { main: { ...emptySection(), props: { lock: 'create' } }, pending: undefined, snapshots: {} });
    });
  } finally {
    release();
  }
  ctx.begin([{ kind: 'qemu', vmid }]);
  try {
    createBody(ctx, vmid, opts, order);
  } catch (error) {
    removeStub(ctx.root, 'qemu', vmid, 'create');
    throw error;
  }
}

function createBody(ctx: Ctx, vmid: string, opts: Record<string, string>, order: string[]): void {
  updateRuntime(ctx.root, (rt) => {
    const createOnly = new Set(['archive', 'storage', 'force', 'unique', 'pool', 'start', 'live-restore', 'bwlimit']);
    const props: Record<string, string> = {};
    for (const key of order) {
      if (createOnly.has(key) || key === 'description') continue;
      let value = opts[key]!;
      if (VM_DISK_KEY.test(key) && !key.startsWith('unused')) value = prepareDisk(ctx, rt, vmid, value);
      if (/^net\d+$/.test(key)) value = normalizeNic(value);
      props[key] = value;
    }
    props.meta ??= `creation-qemu=9.2.0,ctime=${Math.floor(Date.now() / 1000)}`;
    props.smbios1 ??= `uuid=${randomUUID()}`;
    props.vmgenid ??= randomUUID();
    const boot = props.boot ?? defaultBoot(props);
    if (boot) props.boot = boot;
    writeConfigFile(ctx.root, 'qemu', vmid, { main: { description: opts.description ?? '', props, raw: [] }, pending: undefined, snapshots: {} });
    markStopped(rt, vmid);
    fs.mkdirSync(guestFsDir(ctx.root, vmid), { recursive: true });
    if (opts.start === '1') markRunning(rt, vmid, Date.now(), agentDelayMs(ctx.injection, vmid));
  });
}

function clone(ctx: Ctx, vmid: string, newid: string, opts: Record<string, string>): void {
  // qemu-server takes only a shared lock on a stopped source, so clones of
  // one template may run side by side; the new id is held with `lock: clone`.
  updateRuntime(ctx.root, () => {
    const src = loadGuest(ctx, 'qemu', vmid);
    checkLock('qemu', src);
    const full = opts.full === undefined ? !isTemplate(src) : opts.full === '1';
    if (opts.storage !== undefined && !full) die("parameter 'storage' not allowed for linked clones");
    if (opts.format !== undefined && !full) die("parameter 'format' not allowed for linked clones");
    if (opts.snapname && !src.snapshots[opts.snapname]) die(`snapshot '${opts.snapname}' does not exist`);
    if (readConfigFile(ctx.root, 'qemu', newid)) die(`unable to create VM ${newid}: config file already exists`);
    const existing = guestKindOf(ctx.root, newid);
    if (existing) die(`${typeWord(existing)} ${newid} already exists on node '${ctx.host.node}'`);
    writeConfigFile(ctx.root, 'qemu', newid, { main: { ...emptySection(), props: { lock: 'clone' } }, pending: undefined, snapshots: {} });
  });
  ctx.begin();
  try {
    cloneBody(ctx, vmid, newid, opts);
  } catch (error) {
    removeStub(ctx.root, 'qemu', newid, 'clone');
    throw error;
  }
}

function cloneBody(ctx: Ctx, vmid: string, newid: string, opts: Record<string, string>): void {
  updateRuntime(ctx.root, (rt) => {
    const src = loadGuest(ctx, 'qemu', vmid, { inWorker: true });
    const full = opts.full === undefined ? !isTemplate(src) : opts.full === '1';
    const from = opts.snapname ? src.snapshots[opts.snapname]! : src.main;
    const props: Record<string, string> = {};
    for (const [key, value] of Object.entries(from.props)) {
      if (/^unused\d+$/.test(key) || ['parent', 'snaptime', 'vmstate', 'snapstate', 'template', 'lock'].includes(key)) continue;
      if (VM_DISK_KEY.test(key)) {
        const volid = value.split(',')[0]!;
        const vol = /:/.test(volid) && !/media=cdrom/.test(value) ? findVolume(rt, volid) : undefined;
        if (/cloudinit/.test(volid)) {
          const { storeid } = parseVolid(volid);
          props[key] = prepareDisk(ctx, rt, newid, `${storeid}:cloudinit`);
          continue;
        }
        if (!vol) {
          props[key] = value;
          continue;
        }
        const { storeid, volname } = parseVolid(volid);
        let newVolid: string;
        if (full) {
          ctx.out(`create full clone of drive ${key} (${volid})\n`);
          newVolid = allocDisk(rt, opts.storage ?? storeid, newid, vol.size, 'vm', opts.format ? { format: opts.format } : {});
        } else {
          if (!/^base-/.test(volname.split('/').pop()!)) die(`Linked clone feature is not supported for drive '${key}'`);
          ctx.out(`create linked clone of drive ${key} (${volid})\n`);
          newVolid = linkedClone(rt, volid, newid, 'vm');
        }
        props[key] = replaceVolume(value, newVolid, false);
        continue;
      }
      if (/^net\d+$/.test(key)) {
        props[key] = normalizeNic(value.replace(/^(\w+)=[0-9A-Fa-f:]{17}/, '$1'));
        continue;
      }
      props[key] = value;
    }
    props.name = opts.name ?? (from.props.name ? `Copy-of-VM-${from.props.name}` : `Copy-of-VM-${vmid}`);
    props.smbios1 = `uuid=${randomUUID()}`;
    props.vmgenid = randomUUID();
    writeConfigFile(ctx.root, 'qemu', newid, { main: { description: opts.description ?? from.description, props, raw: [] }, pending: undefined, snapshots: {} });
    markStopped(rt, newid);
    copyGuestTree(ctx.root, vmid, newid);
    cloneFirewallConf(ctx.root, vmid, newid);
  });
}

function set(ctx: Ctx, vmid: string, opts: Record<string, string>, order: string[]): void {
  const changes = order.filter((k) => !['delete', 'revert', 'digest', 'skiplock', 'force'].includes(k));
  const deletes = (opts.delete ?? '').split(/[,;\s]+/).filter(Boolean);
  const reverts = (opts.revert ?? '').split(/[,;\s]+/).filter(Boolean);
  if (changes.length === 0 && deletes.length === 0 && reverts.length === 0) die('no options specified');
  const usageText = usage(specs.set!);
  const paramError = (name: string, reason: string): never => {
    throw new ToolExit(255, `400 Parameter verification failed.\n${name}: ${reason}\n${usageText}\n`);
  };
  for (const opt of deletes) {
    if (!vmOption(opt)) paramError('delete', `invalid format - invalid configuration ID '${opt}'`);
    if (changes.includes(opt)) paramError('delete', `you can't use '-${opt}' and -delete ${opt}' at the same time`);
  }
  mutate(ctx, vmid, false, (rt, config) => {
    if (opts.skiplock !== '1') checkLock('qemu', config);
    const running = isRunning(rt, vmid, ctx.root, 'qemu');
    for (const opt of reverts) if (config.pending) delete config.pending.props[opt];
    for (const opt of deletes) {
      if (opt === 'description') {
        config.main.description = '';
        continue;
      }
      const old = config.main.props[opt];
      if (old === undefined) continue;
      if (VM_DISK_KEY.test(opt)) checkProtection(config, `can't remove VM ${vmid} drive '${opt}'`);
      delete config.main.props[opt];
      if (VM_DISK_KEY.test(opt) && !opt.startsWith('unused')) {
        const volid = old.split(',')[0]!;
        if (/:/.test(volid) && !/media=cdrom/.test(old) && findVolume(rt, volid)) config.main.props[nextUnused(config.main)] = volid;
        if (/cloudinit/.test(volid) && findVolume(rt, volid)) freeGuestVolumes(rt, { main: { ...emptySection(), props: { unused0: volid } }, pending: undefined, snapshots: {} }, 'qemu');
      } else if (opt.startsWith('unused')) {
        freeGuestVolumes(rt, { main: { ...emptySection(), props: { [opt]: old } }, pending: undefined, snapshots: {} }, 'qemu');
      }
    }
    for (const opt of changes) {
      let value = opts[opt]!;
      if (opt === 'description') {
        config.main.description = value;
        continue;
      }
      if (VM_DISK_KEY.test(opt) && !opt.startsWith('unused')) {
        const attached = value.split(',')[0]!;
        value = prepareDisk(ctx, rt, vmid, value);
        // Attaching an unused volume moves it out of the unusedN list.
        for (const [k, v] of Object.entries(config.main.props)) if (/^unused\d+$/.test(k) && v === attached) delete config.main.props[k];
        const old = config.main.props[opt];
        if (old !== undefined) {
          const oldVol = old.split(',')[0]!;
          if (oldVol !== value.split(',')[0] && /:/.test(oldVol) && !/media=cdrom/.test(old)) config.main.props[nextUnused(config.main)] = oldVol;
        }
      }
      if (/^net\d+$/.test(opt)) {
        const previousMac = /^\w+=([0-9A-Fa-f:]{17})/.exec(config.main.props[opt] ?? '')?.[1];
        value = normalizeNic(value, previousMac);
      }
      if (running && NOT_HOTPLUGGABLE.test(opt)) {
        config.pending ??= emptySection();
        config.pending.props[opt] = value;
        continue;
      }
      config.main.props[opt] = value;
    }
  });
}

// ---------------------------------------------------------------------------
// lifecycle

function start(ctx: Ctx, vmid: string, skiplock: boolean): void {
  ctx.begin([{ kind: 'qemu', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, 'qemu', vmid, { inWorker: true });
    if (isTemplate(config)) die("you can't start a vm if it's a template");
    if (!skiplock && config.main.props.lock !== 'suspended') checkLock('qemu', config);
    if (isRunning(rt, vmid, ctx.root, 'qemu')) die(`VM ${vmid} already running`);
    if (applyPending(config)) writeConfigFile(ctx.root, 'qemu', vmid, config);
    markRunning(rt, vmid, Date.now(), agentDelayMs(ctx.injection, vmid));
  });
}

function stop(ctx: Ctx, vmid: string): void {
  ctx.begin([{ kind: 'qemu', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    assertExists(ctx, vmid, true);
    // qemu-server returns quietly when the VM is not running.
    if (!isRunning(rt, vmid, ctx.root, 'qemu')) return;
    const config = loadGuest(ctx, 'qemu', vmid, { inWorker: true });
    checkLock('qemu', config);
    markStopped(rt, vmid);
  });
}

function reboot(ctx: Ctx, vmid: string): void {
  assertExists(ctx, vmid, false);
  ctx.begin([{ kind: 'qemu', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    if (!isRunning(rt, vmid, ctx.root, 'qemu')) die(`VM ${vmid} not running`);
    const config = loadGuest(ctx, 'qemu', vmid, { inWorker: true });
    if (applyPending(config)) writeConfigFile(ctx.root, 'qemu', vmid, config);
    markRunning(rt, vmid, Date.now(), agentDelayMs(ctx.injection, vmid));
  });
}

function destroy(ctx: Ctx, vmid: string, opts: Record<string, string>): void {
  loadGuest(ctx, 'qemu', vmid);
  ctx.begin([{ kind: 'qemu', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, 'qemu', vmid);
    checkProtection(config, `can't remove VM ${vmid}`);
    if (opts.skiplock !== '1') checkLock('qemu', config);
    if (isRunning(rt, vmid, ctx.root, 'qemu')) die(`VM ${vmid} is running - destroy failed`);
    freeGuestVolumes(rt, config, 'qemu');
    if (opts['destroy-unreferenced-disks'] !== '0') {
      for (const id of Object.keys(rt.storage)) {
        for (const v of listVolumes(rt, id)) if (String(v.vmid) === vmid && v.content === 'images') {
          freeGuestVolumes(rt, { main: { ...emptySection(), props: { unused0: v.volid } }, pending: undefined, snapshots: {} }, 'qemu');
        }
      }
    }
    removeFirewallConf(ctx.root, vmid);
    if (opts.purge === '1') ctx.out(`purging VM ${vmid} from related configurations..\n`);
    fs.rmSync(path.join(ctx.root, 'pve', 'qemu-server', `${vmid}.conf`), { force: true });
    delete rt.guests[vmid];
    delete rt.agentExec[vmid];
    removeGuestTree(ctx.root, vmid);
  });
}

function template(ctx: Ctx, vmid: string): void {
  loadGuest(ctx, 'qemu', vmid);
  mutate(ctx, vmid, false, (rt, config) => {
    checkLock('qemu', config);
    if (Object.keys(config.snapshots).length > 0) die('unable to create template, because VM contains snapshots');
    if (isTemplate(config)) die("you can't convert a template to a template");
    if (isRunning(rt, vmid, ctx.root, 'qemu')) die("you can't convert a VM to template if VM is running");
    for (const [key, volid] of guestVolumes('qemu', config.main)) {
      if (key.startsWith('unused') || /cloudinit/.test(volid)) continue;
      config.main.props[key] = replaceVolume(config.main.props[key]!, convertToBase(rt, volid), false);
    }
    config.main.props.template = '1';
  });
}

function rollback(ctx: Ctx, vmid: string, name: string, startAfter: boolean): void {
  lockedTask(
    ctx,
    'qemu',
    vmid,
    'rollback',
    (rt, config) => {
      checkRollback(rt, 'qemu', config, name);
      markStopped(rt, vmid);
    },
    (rt, config) => {
      const restored = rollbackSnapshot(ctx, rt, 'qemu', vmid, config, name);
      if (startAfter) markRunning(rt, vmid, Date.now(), agentDelayMs(ctx.injection, vmid));
      return restored;
    },
  );
}

function importDisk(ctx: Ctx, vmid: string, source: string, storeid: string, format: string | undefined): void {
  let result = '';
  mutate(ctx, vmid, false, (rt, config) => {
    checkLock('qemu', config);
    const mapped = source.startsWith('/') ? volumeForPath(rt, source) : undefined;
    if (!mapped && !(fs.existsSync(source) && fs.statSync(source).isFile())) die(`${source}: non-existent or non-regular file`);
    storageOf(rt, storeid);
    ctx.out(`importing disk '${source}' to VM ${vmid} ...\n`);
    const volid = importFile(ctx, rt, vmid, source, storeid, format);
    const key = nextUnused(config.main);
    config.main.props[key] = volid;
    const size = volumeSize(rt, volid) ?? 0;
    ctx.out(`transferred ${(size / 1024 ** 3).toFixed(1)} GiB of ${(size / 1024 ** 3).toFixed(1)} GiB (100.00%)\n`);
    result = `${key}: successfully imported disk '${volid}'\n`;
  });
  ctx.out(result);
}

function resize(ctx: Ctx, vmid: string, disk: string, sizeText: string): void {
  mutate(ctx, vmid, true, (rt, config) => {
    checkLock('qemu', config);
    const value = config.main.props[disk];
    if (value === undefined) die(`disk '${disk}' does not exist`);
    if (/media=cdrom/.test(value)) die("you can't resize a cdrom");
    const volid = value.split(',')[0]!;
    const current = volumeSize(rt, volid);
    if (current === undefined) die(`Could not determine current size of volume '${volid}'`);
    const grow = sizeText.startsWith('+');
    const request = parseSize(sizeText.replace(/^\+/, ''))!;
    const newSize = grow ? current + request : request;
    if (newSize < current) die('shrinking disks is not supported');
    if (newSize === current) return;
    setVolumeSize(rt, volid, newSize);
    config.main.props[disk] = [...value.split(',').filter((p) => !p.startsWith('size=')), `size=${formatSize(newSize)}`].join(',');
  });
}

// ---------------------------------------------------------------------------
// guest agent

/** Perl's JSON->pretty->canonical output: 3-space indent, "key" : value. */
export function perlJson(value: Record<string, string | number>): string {
  const keys = Object.keys(value).sort();
  if (keys.length === 0) return '{}\n';
  const body = keys.map((k) => `   ${JSON.stringify(k)} : ${JSON.stringify(value[k])}`).join(',\n');
  return `{\n${body}\n}\n`;
}

function agentAvailable(ctx: Ctx, vmid: string): { config: GuestConfig; rt: Runtime } {
  const config = loadGuest(ctx, 'qemu', vmid);
  const rt = loadRuntime(ctx.root);
  if (config.main.props.agent === undefined) die('No QEMU guest agent configured');
  if (!isRunning(rt, vmid, ctx.root, 'qemu')) die(`VM ${vmid} is not running`);
  const enabled = !/^(enabled=)?0(,|$)/.test(config.main.props.agent);
  const ready = rt.guests[vmid]?.agentReadyAt ?? 0;
  if (!enabled || Date.now() < ready) die('QEMU guest agent is not running');
  return { config, rt };
}

function guestCmd(ctx: Ctx, vmid: string, command: string): void {
  ctx.begin();
  const { config } = agentAvailable(ctx, vmid);
  const hostname = () => {
    try {
      return fs.readFileSync(path.join(guestFsDir(ctx.root, vmid), 'etc', 'hostname'), 'utf8').trim();
    } catch {
      return config.main.props.name ?? `vm${vmid}`;
    }
  };
  switch (command) {
    case 'ping':
    case 'fsfreeze-thaw':
    case 'fstrim':
      return;
    case 'get-host-name':
      ctx.out(`{\n   "host-name" : ${JSON.stringify(hostname())}\n}\n`);
      return;
    case 'get-osinfo':
      ctx.out(perlJson({ id: 'ubuntu', name: 'Ubuntu', 'pretty-name': 'Ubuntu 24.04 LTS', 'version-id': '24.04', 'kernel-release': '6.8.0-45-generic', machine: 'x86_64' }));
      return;
    case 'fsfreeze-status':
      ctx.out('thawed\n');
      return;
    case 'info':
      ctx.out(perlJson({ version: '8.2.2' }));
      return;
    case 'network-get-interfaces': {
      const ip = /ip=([\d.]+)\/(\d+)/.exec(config.main.props.ipconfig0 ?? '');
      const mac = /^\w+=([0-9A-Fa-f:]{17})/.exec(config.main.props.net0 ?? '')?.[1]?.toLowerCase() ?? '00:00:00:00:00:00';
      const iface = ip ? `,\n      "ip-addresses" : [\n         {\n            "ip-address" : "${ip[1]}",\n            "ip-address-type" : "ipv4",\n            "prefix" : ${ip[2]}\n         }\n      ]` : '';
      ctx.out(`[\n   {\n      "hardware-address" : "00:00:00:00:00:00",\n      "name" : "lo"\n   },\n   {\n      "hardware-address" : "${mac}"${iface},\n      "name" : "eth0"\n   }\n]\n`);
      return;
    }
    default:
      die(`simhost: 'qm guest cmd ${command}' is not simulated`);
  }
}

function guestExec(ctx: Ctx, vmid: string, command: string[], opts: Record<string, string>): void {
  const sync = opts.synchronous !== '0';
  if (opts.timeout !== undefined && !sync) {
    throw new ToolExit(255, `400 Parameter verification failed.\nsynchronous: needs to be set for 'timeout'\n${usage(specs['guest exec']!)}\n`);
  }
  ctx.begin();
  const stdin = opts['pass-stdin'] === '1' ? ctx.stdin() : undefined;
  if (stdin && stdin.length > 1024 * 1024) die("'input-data' (STDIN) is limited to 1 MiB, aborting");
  agentAvailable(ctx, vmid);
  if (command.length === 0 && !stdin) die('command or input-data (or both) required');
  const scale = timeScale(ctx.injection);
  const timeoutS = opts.timeout !== undefined ? Number(opts.timeout) : 30;

  const rule = takeExecRule(ctx.root, ctx.injection, { tool: 'qm', guest: vmid, command, ...(stdin ? { stdin: stdin.toString('latin1') } : {}) });
  let result: { exit: number; stdout: string; stderr: string };
  let durationMs = 0;
  if (rule) {
    result = { exit: rule.exit ?? 0, stdout: rule.stdout ?? '', stderr: rule.stderr ?? '' };
    durationMs = rule.duration_ms ?? 0;
  } else {
    const g = new GuestFs(guestFsDir(ctx.root, vmid));
    fs.mkdirSync(g.base, { recursive: true });
    const cmd = command.length > 0 ? command : ['sh'];
    result = runCommand(g, cmd, { launcher: 'qemu-ga', vmid, root: ctx.root, ...(stdin ? { stdin } : (readsStdin(cmd) ? { stdin: Buffer.alloc(0) } : {})) });
    if (result.exit === -1) {
      throw new ToolExit(255, result.stderr.replace(/\n?$/, '\n'));
    }
  }

  const pid = updateRuntime(ctx.root, (rt) => rt.nextPid++);
  const exceeds = sync && timeoutS !== 0 && durationMs > timeoutS * 1000;
  if (!sync || exceeds) {
    updateRuntime(ctx.root, (rt) => {
      (rt.agentExec[vmid] ??= {})[String(pid)] = { doneAt: Date.now() + durationMs * scale, exitcode: result.exit, out: result.stdout, err: result.stderr };
    });
    if (exceeds) {
      sleepSync(timeoutS * 1000 * scale);
      ctx.err('timeout reached, returning pid\n');
    }
    ctx.out(perlJson({ pid }));
    return;
  }
  sleepSync(durationMs * scale);
  ctx.out(perlJson(execReply(result.exit, result.stdout, result.stderr)));
}

function execReply(exitcode: number, out: string, err: string): Record<string, string | number> {
  const reply: Record<string, string | number> = { exitcode, exited: 1 };
  if (out !== '') reply['out-data'] = out;
  if (err !== '') reply['err-data'] = err;
  return reply;
}

function execStatus(ctx: Ctx, vmid: string, pid: string): void {
  ctx.begin();
  agentAvailable(ctx, vmid);
  const reply = updateRuntime(ctx.root, (rt) => {
    const job = rt.agentExec[vmid]?.[pid];
    if (!job) return undefined;
    if (Date.now() < job.doneAt) return { exited: 0 } as Record<string, string | number>;
    // The agent forgets a process once its exit has been reported.
    delete rt.agentExec[vmid]![pid];
    return execReply(job.exitcode, job.out, job.err);
  });
  if (!reply) die(`Agent error: Invalid parameter 'pid'`);
  ctx.out(perlJson(reply));
}

function cloudinitDump(ctx: Ctx, vmid: string, type: string): void {
  const config = loadGuest(ctx, 'qemu', vmid);
  const props = config.main.props;
  const name = props.name ?? `VM${vmid}`;
  if (type === 'user') {
    let out = `#cloud-config\nhostname: ${name}\nmanage_etc_hosts: true\nfqdn: ${name}${props.searchdomain ? `.${props.searchdomain}` : ''}\n`;
    if (props.ciuser) out += `user: ${props.ciuser}\n`;
    out += `chpasswd:\n  expire: False\nusers:\n  - default\npackage_upgrade: ${props.ciupgrade === '0' ? 'false' : 'true'}\n`;
    ctx.out(out);
  } else if (type === 'network') {
    const ip = parsePropertyString(props.ipconfig0 ?? 'ip=dhcp');
    let out = 'version: 1\nconfig:\n    - type: physical\n      name: eth0\n      subnets:\n';
    out += ip.ip === 'dhcp' || !ip.ip ? '      - type: dhcp4\n' : `      - type: static\n        address: '${ip.ip}'\n${ip.gw ? `        gateway: '${ip.gw}'\n` : ''}`;
    if (props.nameserver) out += `    - type: nameserver\n      address:\n      - '${props.nameserver}'\n`;
    ctx.out(out);
  } else {
    ctx.out(`instance-id: ${cloudinitInstanceId(config)}\n`);
  }
}

function cloudinitInstanceId(config: GuestConfig): string {
  // A stable stand-in for the digest PVE derives from the cloud-init settings.
  const text = Object.entries(config.main.props).filter(([k]) => /^(ci|ipconfig|nameserver|searchdomain|sshkeys)/.test(k)).map(([k, v]) => `${k}=${v}`).join(';');
  let h = 0;
  for (const c of text) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h.toString(16).padStart(8, '0');
}

