// The simulated `pct`. Messages, refusals and exit codes follow
// pve-container (PVE::API2::LXC*, PVE::CLI::pct) and pve-guest-common;
// where a command runs as a task on PVE the failure is exit 255 with the
// message on stderr, config-file lookups outside a task exit 2 (errno).

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  boolValue,
  configIdFormat,
  dnsNameFormat,
  formatSize,
  intValue,
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
  anyValue,
  type CommandSpec,
  type OptSpec,
} from './args.mts';
import type { Ctx } from './cli.mts';
import {
  GuestFs,
  copyGuestTree,
  distroFor,
  guestFsDir,
  populateGuest,
  removeGuestTree,
  runCommand,
  type HostMount,
} from './guestfs.mts';
import {
  applyPending,
  checkLock,
  checkRollback,
  prepareSnapshot,
  checkSnapshotDelete,
  dropLockMark,
  lockedTask,
  checkProtection,
  checkVmidUnused,
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
} from './guests.mts';
import { takeExecRule, timeScale } from './inject.mts';
import { CT_ROOT, idMapsOf, startFailure } from './idmap.mts';
import { lookupGroup, lookupUser } from './guest-accounts.mts';
import { openForWrite, readAs } from './guest-builtins.mts';
import { ERRNO_TEXT } from './guestview.mts';
import { configPath, emptySection, listGuestIds, parsePropertyString, printPropertyString, readConfigFile, writeConfigFile, type GuestConfig } from './pveconf.mts';
import { allocDisk, convertToBase, findVolume, freeVolume, linkedClone, listVolumes, parseVolid, setVolumeSize, storageOf, volumeForPath, volumeSize } from './storage.mts';
import { die, loadRuntime, sleepSync, ToolExit, updateRuntime, type Runtime } from './state.mts';
import './programs/index.mts';

// ---------------------------------------------------------------------------
// Parameter schema (pve-container's confdesc, as far as it matters here)

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

function ctOption(name: string): OptSpec | undefined {
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

const bool: OptSpec = { type: 'boolean' };
const str: OptSpec = { type: 'string' };
const storageId: OptSpec = { type: 'string', format: (v) => (/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? undefined : `storage ID '${v}' contains illegal characters`) };

function spec(name: string, args: string[], params: Record<string, OptSpec>, extra?: (n: string) => OptSpec | undefined, optionalArgs?: string[]): CommandSpec {
  return {
    name: `pct ${name}`,
    args,
    ...(optionalArgs ? { optionalArgs } : {}),
    param: (n) => (n === 'vmid' || n === 'newid' ? vmidSpec : params[n] ?? extra?.(n)),
  };
}

const specs: Record<string, CommandSpec> = {
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
    size: { type: 'string', format: (v) => (/^\+?\d+(\.\d+)?[KMGT]?$/.test(v) ? undefined : 'value does not match the regex pattern') },
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

const NOT_SIMULATED = ['console', 'cpusets', 'df', 'enter', 'fsck', 'fstrim', 'migrate', 'mount', 'move-volume', 'move_volume', 'pending', 'remote-migrate', 'rescan', 'restore', 'resume', 'suspend', 'unmount'];

// Options a running container cannot take live; they wait in [pve:pending].
const NOT_HOTPLUGGABLE = /^(features|arch|ostype|tty|console|cmode|entrypoint|env|hookscript|debug|dev\d+|rootfs)$/;

export function runPct(ctx: Ctx): void {
  const verb = ctx.verb(ctx.argv[0], Object.keys(specs), NOT_SIMULATED);
  const p = parseCommand(specs[verb]!, ctx.argv.slice(1));
  const vmid = p.args.vmid!;
  switch (verb) {
    case 'list':
      return list(ctx);
    case 'status':
      ctx.begin();
      return status(ctx, vmid, p.opts.verbose === '1');
    case 'config':
      ctx.begin();
      return ctx.out(guestConfigText(ctx, 'lxc', vmid, p.opts.snapshot, p.opts.current === '1'));
    case 'create':
      return create(ctx, vmid, p.args.ostemplate!, p.opts, p.order);
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
    case 'resize':
      return resize(ctx, vmid, p.args.disk!, p.args.size!);
    case 'snapshot':
      return snapshot(ctx, vmid, p.args.snapname!, p.opts.description);
    case 'listsnapshot': {
      ctx.begin();
      ctx.out(snapshotTree(loadGuest(ctx, 'lxc', vmid)));
      return;
    }
    case 'delsnapshot':
      return delsnapshot(ctx, vmid, p.args.snapname!, p.opts.force === '1');
    case 'rollback':
      return rollback(ctx, vmid, p.args.snapname!, p.opts.start === '1');
    case 'unlock':
      ctx.begin([{ kind: 'lxc', vmid }]);
      updateRuntime(ctx.root, () => {
        const config = loadGuest(ctx, 'lxc', vmid);
        delete config.main.props.lock;
        writeConfigFile(ctx.root, 'lxc', vmid, config);
      });
      return;
    case 'exec':
      return exec(ctx, vmid, p.extra);
    case 'push':
      return push(ctx, vmid, p.args.file!, p.args.destination!, p.opts);
    case 'pull':
      return pull(ctx, vmid, p.args.path!, p.args.destination!, p.opts);
  }
}

// ---------------------------------------------------------------------------

function list(ctx: Ctx): void {
  ctx.begin();
  const rt = loadRuntime(ctx.root);
  const ids = listGuestIds(ctx.root, 'lxc');
  if (ids.length === 0) return;
  const row = (a: string, b: string, c: string, d: string) => `${a.padEnd(10)} ${b.padEnd(10)} ${c.padEnd(12)} ${d.padEnd(20)}\n`;
  let out = row('VMID', 'Status', 'Lock', 'Name');
  for (const id of ids) {
    const config = readConfigFile(ctx.root, 'lxc', id);
    if (!config) continue;
    const name = (config.main.props.hostname ?? `CT${id}`).replace(/\s/g, '');
    out += row(id, isRunning(rt, id, ctx.root, 'lxc') ? 'running' : 'stopped', config.main.props.lock ?? '', name);
  }
  ctx.out(out);
}

function status(ctx: Ctx, vmid: string, verbose: boolean): void {
  const config = loadGuest(ctx, 'lxc', vmid);
  const rt = loadRuntime(ctx.root);
  const running = isRunning(rt, vmid, ctx.root, 'lxc');
  if (!verbose) {
    ctx.out(`status: ${running ? 'running' : 'stopped'}\n`);
    return;
  }
  const g = runtimeOf(rt, vmid);
  const rootfs = config.main.props.rootfs ?? '';
  const maxdisk = diskSizeOption(rootfs) ?? 4 * 1024 ** 3;
  const stat: Record<string, string | number> = {
    cpus: Number(config.main.props.cores ?? ctx.host.cpus),
    disk: running ? Math.floor(maxdisk / 8) : 0,
    diskread: 0,
    diskwrite: 0,
    maxdisk,
    maxmem: Number(config.main.props.memory ?? 512) * 1024 ** 2,
    maxswap: Number(config.main.props.swap ?? 512) * 1024 ** 2,
    mem: running ? 64 * 1024 ** 2 : 0,
    name: (config.main.props.hostname ?? `CT${vmid}`).replace(/\s/g, ''),
    netin: 0,
    netout: 0,
    status: running ? 'running' : 'stopped',
    swap: 0,
    type: 'lxc',
    uptime: running && g.startedAt ? Math.floor((Date.now() - g.startedAt) / 1000) : 0,
    vmid: Number(vmid),
  };
  if (running && g.pid) stat.pid = g.pid;
  if (config.main.props.template === '1') stat.template = 1;
  ctx.out(Object.keys(stat).sort().map((k) => `${k}: ${stat[k]}\n`).join(''));
}

// ---------------------------------------------------------------------------
// create / clone / destroy / template

interface ResolvedTemplate {
  distro: string;
  missing?: string;
}

function resolveTemplate(rt: Runtime, ostemplate: string): ResolvedTemplate {
  const distro = distroFor(ostemplate);
  if (ostemplate.startsWith('/')) {
    if (volumeForPath(rt, ostemplate)) return { distro };
    if (fs.existsSync(ostemplate) && fs.statSync(ostemplate).isFile()) return { distro };
    return { distro, missing: `can't find file '${ostemplate}'` };
  }
  const { storeid, volname } = parseVolid(ostemplate);
  const storage = storageOf(rt, storeid);
  if (!volname.startsWith('vztmpl/')) die(`unable to use volume ${ostemplate} - content type needs to be 'vztmpl'`);
  if (!storage.volumes[volname]) return { distro, missing: `volume '${ostemplate}' does not exist` };
  return { distro };
}

/** Turn `STORE:SIZE_GB[,opts]` into an allocated volume; leave an existing volume or a bind path alone. */
function allocateMount(rt: Runtime, vmid: string, value: string, usage_: () => string): string {
  const props = parsePropertyString(value, 'volume');
  const volume = props.volume!;
  if (volume.startsWith('/')) return value;
  const m = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(?:\.\d+)?)$/i.exec(volume);
  if (!m) {
    if (!findVolume(rt, volume)) die(`volume '${volume}' does not exist`);
    return value;
  }
  const storeid = m[1]!;
  const storage = rt.storage[storeid];
  if (!storage) die(`storage '${storeid}' does not exist`);
  if (!storage.content.includes('rootdir')) {
    throw new ToolExit(255, `400 Parameter verification failed.\nstorage: storage '${storeid}' does not support container directories\n${usage_()}\n`);
  }
  const bytes = Math.round(Number(m[2]) * 1024 ** 3);
  const volid = allocDisk(rt, storeid, vmid, bytes, 'ct');
  const rest = { ...props };
  delete rest.volume;
  rest.size = formatSize(bytes);
  return printPropertyString({ volume: volid, ...sortedObject(rest) }, 'volume');
}

function sortedObject(obj: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => a.localeCompare(b)));
}

function normalizeNet(value: string): string {
  const props = parsePropertyString(value);
  props.hwaddr ??= randomMac();
  props.type ??= 'veth';
  return printPropertyString(sortedObject(props));
}

function create(ctx: Ctx, vmid: string, ostemplate: string, opts: Record<string, string>, order: string[]): void {
  const startAfter = opts.start === '1';
  const usageText = () => usage(specs.create!);
  // Checked and registered (as a config holding only `lock: create`) before the task starts.
  const release = ctx.lockGuest({ kind: 'lxc', vmid });
  let tmpl: ResolvedTemplate;
  try {
    tmpl = updateRuntime(ctx.root, (rt) => {
      checkVmidUnused(ctx, vmid);
      const resolved = resolveTemplate(rt, ostemplate);
      const storage = opts.storage ?? 'local';
      if (!rt.storage[storage]) die(`storage '${storage}' does not exist`);
      const rootfsStore = /^([^:,]+):/.exec(opts.rootfs ?? `${storage}:4`)?.[1];
      if (rootfsStore && !rootfsStore.startsWith('/') && rt.storage[rootfsStore] && !rt.storage[rootfsStore]!.content.includes('rootdir')) {
        throw new ToolExit(255, `400 Parameter verification failed.\nstorage: storage '${rootfsStore}' does not support container directories\n${usageText()}\n`);
      }
      writeConfigFile(ctx.root, 'lxc', vmid, { main: { ...emptySection(), props: { lock: 'create' } }, pending: undefined, snapshots: {} });
      return resolved;
    });
  } finally {
    release();
  }
  // The creation itself holds the config lock, as pve-container's worker does.
  ctx.begin([{ kind: 'lxc', vmid }]);
  try {
    updateRuntime(ctx.root, (rt) => {
      if (tmpl.missing) die(`unable to create CT ${vmid} - ${tmpl.missing}`);
      const storage = opts.storage ?? 'local';
      const props: Record<string, string> = { arch: 'amd64', ostype: tmpl.distro };
      const createOnly = new Set(['password', 'storage', 'force', 'restore', 'unique', 'pool', 'ignore-unpack-errors', 'ssh-public-keys', 'bwlimit', 'start', 'ha-managed', 'unprivileged']);
      for (const key of order) if (!createOnly.has(key) && key !== 'description') props[key] = opts[key]!;
      props.rootfs = allocateMount(rt, vmid, opts.rootfs ?? `${storage}:4`, usageText);
      for (const key of order) {
        if (/^mp\d+$/.test(key)) props[key] = allocateMount(rt, vmid, opts[key]!, usageText);
        if (/^net\d+$/.test(key)) props[key] = normalizeNet(opts[key]!);
      }
      if (opts.unprivileged !== '0') props.unprivileged = '1';
      writeConfigFile(ctx.root, 'lxc', vmid, { main: { description: opts.description ?? '', props, raw: [] }, pending: undefined, snapshots: {} });
      markStopped(rt, vmid);
      populateGuest(ctx.root, vmid, tmpl.distro, props.hostname ?? `CT${vmid}`);
      if (startAfter) markRunning(rt, vmid, Date.now());
    });
  } catch (error) {
    // A failed create leaves nothing behind (pve-container destroys the config on error).
    removeStub(ctx.root, 'lxc', vmid, 'create');
    throw error;
  }
}

/** Remove a config that is still only a `lock: <name>` placeholder. */
export function removeStub(root: string, kind: 'lxc' | 'qemu', vmid: string, lockName: string): void {
  try {
    updateRuntime(root, (rt) => {
      const config = readConfigFile(root, kind, vmid);
      if (config?.main.props.lock !== lockName) return;
      fs.rmSync(configPath(root, kind, vmid), { force: true });
      delete rt.guests[vmid];
    });
  } catch {
    // best effort
  }
}

function clone(ctx: Ctx, vmid: string, newid: string, opts: Record<string, string>): void {
  // Step 1, under the source's flock: the source is marked `lock: disk` for
  // the whole clone (so a second clone of it meanwhile is refused with
  // "CT is locked (disk)") and the new id is taken with `lock: create`.
  const release = ctx.lockGuest({ kind: 'lxc', vmid });
  try {
    updateRuntime(ctx.root, (rt) => {
      const src = loadGuest(ctx, 'lxc', vmid);
      checkLock('lxc', src);
      checkVmidUnused(ctx, newid);
      const full = opts.full === undefined ? !isTemplate(src) : opts.full === '1';
      if (opts.storage !== undefined && !full) die("parameter 'storage' not allowed for linked clones");
      if (opts.snapname && !src.snapshots[opts.snapname]) die(`snapshot '${opts.snapname}' does not exist`);
      if (opts.storage !== undefined) storageOf(rt, opts.storage);
      const from = opts.snapname ? src.snapshots[opts.snapname]! : src.main;
      const running = isRunning(rt, vmid, ctx.root, 'lxc');
      for (const [key, value] of Object.entries(from.props)) {
        if (key !== 'rootfs' && !/^mp\d+$/.test(key)) continue;
        const volume = parsePropertyString(value, 'volume').volume!;
        if (volume.startsWith('/')) die(`unable to clone mountpoint '${key}' (type bind)`);
        if (full && running && !opts.snapname) die('Full clone of a running container is only possible from a snapshot');
        if (!full && !/^(base|basevol)-/.test(parseVolid(volume).volname.split('/').pop()!)) die(`Linked clone feature for '${volume}' is not available`);
      }
      src.main.props.lock = 'disk';
      writeConfigFile(ctx.root, 'lxc', vmid, src);
      writeConfigFile(ctx.root, 'lxc', newid, { main: { ...emptySection(), props: { lock: 'create' } }, pending: undefined, snapshots: {} });
    });
  } finally {
    release();
  }
  // Step 2: copying the disks; no flock is held.
  ctx.begin();
  // Step 3: write the new config and release the source.
  try {
    updateRuntime(ctx.root, (rt) => {
      const src = loadGuest(ctx, 'lxc', vmid, { inWorker: true });
      const full = opts.full === undefined ? !isTemplate(src) : opts.full === '1';
      const from = opts.snapname ? src.snapshots[opts.snapname]! : src.main;
      const props: Record<string, string> = {};
      for (const [key, value] of Object.entries(from.props)) {
        if (/^unused\d+$/.test(key) || ['parent', 'snaptime', 'snapstate', 'template', 'lock'].includes(key)) continue;
        if (key === 'rootfs' || /^mp\d+$/.test(key)) {
          const volume = parsePropertyString(value, 'volume').volume!;
          const target = opts.storage ?? parseVolid(volume).storeid;
          const newVolid = full ? allocDisk(rt, target, newid, volumeSize(rt, volume) ?? 0, 'ct') : linkedClone(rt, volume, newid, 'ct');
          props[key] = replaceVolume(value, newVolid, false);
          continue;
        }
        if (/^net\d+$/.test(key)) {
          // a clone always gets a new MAC
          const net = parsePropertyString(value);
          net.hwaddr = randomMac();
          props[key] = printPropertyString(sortedObject(net));
          continue;
        }
        props[key] = value;
      }
      if (opts.hostname) props.hostname = opts.hostname;
      writeConfigFile(ctx.root, 'lxc', newid, { main: { description: opts.description ?? from.description, props, raw: [...from.raw] }, pending: undefined, snapshots: {} });
      if (src.main.props.lock === 'disk') delete src.main.props.lock;
      writeConfigFile(ctx.root, 'lxc', vmid, src);
      markStopped(rt, newid);
      copyGuestTree(ctx.root, vmid, newid);
      fs.writeFileSync(path.join(guestFsDir(ctx.root, newid), 'etc', 'hostname'), `${props.hostname ?? `CT${newid}`}\n`);
      cloneFirewallConf(ctx.root, vmid, newid);
    });
  } catch (error) {
    dropLockMark(ctx.root, 'lxc', vmid, 'disk');
    removeStub(ctx.root, 'lxc', newid, 'create');
    throw error;
  }
}

function destroy(ctx: Ctx, vmid: string, opts: Record<string, string>): void {
  // The existence check comes before the task starts (exit 2), the rest inside it.
  loadGuest(ctx, 'lxc', vmid);
  ctx.begin([{ kind: 'lxc', vmid }]);
  const purge = opts.purge === '1';
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, 'lxc', vmid);
    checkProtection(config, `can't remove CT ${vmid}`);
    checkLock('lxc', config);
    if (isRunning(rt, vmid, ctx.root, 'lxc')) {
      if (opts.force !== '1') die(`unable to destroy CT ${vmid} - container is running`);
      ctx.err(`forced to stop CT ${vmid} before destroying!\n`);
    }
    freeGuestVolumes(rt, config, 'lxc');
    if (opts['destroy-unreferenced-disks'] === '1') {
      for (const id of Object.keys(rt.storage)) {
        for (const v of listVolumes(rt, id)) if (String(v.vmid) === vmid && v.content === 'rootdir') freeVolume(rt, v.volid);
      }
    }
    removeFirewallConf(ctx.root, vmid);
    if (purge) ctx.out(`purging CT ${vmid} from related configurations..\n`);
    fs.rmSync(path.join(ctx.root, 'pve', 'lxc', `${vmid}.conf`), { force: true });
    delete rt.guests[vmid];
    removeGuestTree(ctx.root, vmid);
  });
}

/** Free every volume of a guest (live, snapshots, unused); a base with linked clones refuses. */
export function freeGuestVolumes(rt: Runtime, config: GuestConfig, kind: 'lxc' | 'qemu'): void {
  const seen = new Set<string>();
  for (const section of [config.main, config.pending, ...Object.values(config.snapshots)]) {
    if (!section) continue;
    for (const [, volid] of guestVolumes(kind, section)) {
      if (seen.has(volid)) continue;
      seen.add(volid);
      const { storeid, volname } = parseVolid(volid);
      if (!rt.storage[storeid]) continue;
      if (/^(base|basevol)-/.test(volname.split('/').pop()!) && !volname.includes('/')) {
        const inUse = listVolumes(rt, storeid).some((v) => v.volname.startsWith(`${volname}/`));
        if (inUse) die(`base volume '${volname}' is still in use by linked clones`);
      }
      freeVolume(rt, volid);
    }
  }
}

function template(ctx: Ctx, vmid: string): void {
  loadGuest(ctx, 'lxc', vmid);
  ctx.begin([{ kind: 'lxc', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, 'lxc', vmid);
    checkLock('lxc', config);
    if (Object.keys(config.snapshots).length > 0) die('unable to create template, because CT contains snapshots');
    if (isTemplate(config)) die("you can't convert a template to a template");
    if (isRunning(rt, vmid, ctx.root, 'lxc')) die("you can't convert a CT to template if the CT is running");
    for (const [key, volid] of guestVolumes('lxc', config.main)) {
      if (key.startsWith('unused')) continue;
      const base = convertToBase(rt, volid);
      config.main.props[key] = replaceVolume(config.main.props[key]!, base, false);
    }
    config.main.props.template = '1';
    writeConfigFile(ctx.root, 'lxc', vmid, config);
  });
}

// ---------------------------------------------------------------------------
// set

function set(ctx: Ctx, vmid: string, opts: Record<string, string>, order: string[]): void {
  const changes = order.filter((k) => k !== 'delete' && k !== 'revert' && k !== 'digest');
  const deletes = (opts.delete ?? '').split(/[,;\s]+/).filter(Boolean);
  const reverts = (opts.revert ?? '').split(/[,;\s]+/).filter(Boolean);
  if (changes.length === 0 && deletes.length === 0 && reverts.length === 0) die('no options specified');
  ctx.begin([{ kind: 'lxc', vmid }]);
  const usageText = usage(specs.set!);
  const paramError = (name: string, reason: string): never => {
    throw new ToolExit(255, `400 Parameter verification failed.\n${name}: ${reason}\n${usageText}\n`);
  };
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, 'lxc', vmid);
    checkLock('lxc', config);
    if (opts.digest !== undefined && opts.digest !== configDigest(ctx, vmid)) {
      die('detected modified configuration - file changed by other user? Try again.');
    }
    for (const opt of reverts) if (!ctOption(opt)) paramError('revert', `unknown option '${opt}'`);
    for (const opt of deletes) {
      if (!ctOption(opt)) paramError('delete', `unknown option '${opt}'`);
      if (changes.includes(opt)) paramError('delete', `you can't use '-${opt}' and -delete ${opt}' at the same time`);
    }
    const running = isRunning(rt, vmid, ctx.root, 'lxc');
    for (const opt of reverts) if (config.pending) delete config.pending.props[opt];

    for (const opt of deletes) {
      const isSet = opt === 'description' ? config.main.description !== '' : config.main.props[opt] !== undefined || config.pending?.props[opt] !== undefined;
      if (!isSet) {
        ctx.err(`cannot delete '${opt}' - not set in current configuration!\n`);
        continue;
      }
      if (opt === 'memory' || opt === 'rootfs' || opt === 'ostype') die(`unable to delete required option '${opt}'`);
      if (opt === 'unprivileged') die(`unable to delete read-only option: '${opt}'`);
      if (/^(mp|unused)\d+$/.test(opt)) checkProtection(config, `can't remove CT ${vmid} drive '${opt}'`);
      if (opt === 'description') {
        config.main.description = '';
        continue;
      }
      const old = config.main.props[opt];
      delete config.main.props[opt];
      if (old !== undefined && /^mp\d+$/.test(opt)) {
        const volid = parsePropertyString(old, 'volume').volume!;
        if (!volid.startsWith('/')) config.main.props[nextUnused(config.main)] = volid;
      }
      if (old !== undefined && /^unused\d+$/.test(opt)) freeVolume(rt, old);
    }

    for (const opt of [...changes].sort()) {
      let value = opts[opt]!;
      if (opt === 'unprivileged') die(`unable to modify read-only option: '${opt}'`);
      if (opt === 'description') {
        // Kept as the '#' comment block on top of the file, newlines and all.
        config.main.description = value;
        continue;
      }
      if (opt === 'rootfs' || /^mp\d+$/.test(opt)) {
        checkProtection(config, `can't update CT ${vmid} drive '${opt}'`);
        const old = config.main.props[opt];
        value = allocateMount(rt, vmid, value, () => usageText);
        if (old !== undefined) {
          const oldVol = parsePropertyString(old, 'volume').volume!;
          const newVol = parsePropertyString(value, 'volume').volume!;
          if (oldVol !== newVol && !oldVol.startsWith('/')) config.main.props[nextUnused(config.main)] = oldVol;
        }
      }
      if (/^net\d+$/.test(opt)) {
        const previous = config.main.props[opt] ? parsePropertyString(config.main.props[opt]!) : {};
        const next = parsePropertyString(value);
        if (next.hwaddr === undefined && previous.hwaddr !== undefined) next.hwaddr = previous.hwaddr;
        value = normalizeNet(printPropertyString(next));
      }
      if (running && NOT_HOTPLUGGABLE.test(opt)) {
        config.pending ??= emptySection();
        config.pending.props[opt] = value;
        continue;
      }
      config.main.props[opt] = value;
    }
    writeConfigFile(ctx.root, 'lxc', vmid, config);
  });
}

function configDigest(ctx: Ctx, vmid: string): string {
  // PVE's digest is the SHA-1 of the config file.
  return createHash('sha1').update(fs.readFileSync(path.join(ctx.root, 'pve', 'lxc', `${vmid}.conf`))).digest('hex');
}

// ---------------------------------------------------------------------------
// lifecycle

function start(ctx: Ctx, vmid: string, skiplock: boolean): void {
  ctx.begin([{ kind: 'lxc', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    if (isRunning(rt, vmid, ctx.root, 'lxc')) die(`CT ${vmid} already running`);
    const config = loadGuest(ctx, 'lxc', vmid, { inWorker: true });
    if (isTemplate(config)) die("you can't start a CT if it's a template");
    if (!skiplock && config.main.props.lock !== 'mounted') checkLock('lxc', config);
    if (applyPending(config)) writeConfigFile(ctx.root, 'lxc', vmid, config);
    // pve-container parses the id maps, then LXC (newuidmap/newgidmap) applies them.
    const { maps, error } = idMapsOf(config);
    if (error) die(error);
    const refused = startFailure(vmid, maps, hostRootOf(ctx), 4000 + Number(vmid));
    if (refused) die(refused);
    markRunning(rt, vmid, Date.now());
  });
}

/** The simulated host's own files: PHOENIX_HOST_ROOT, default <state>/hostfs (as lib/core/env.mts has it). */
function hostRootOf(ctx: Ctx): string {
  return process.env.PHOENIX_HOST_ROOT || path.join(ctx.root, 'hostfs');
}

function stop(ctx: Ctx, vmid: string): void {
  ctx.begin([{ kind: 'lxc', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    if (!isRunning(rt, vmid, ctx.root, 'lxc')) die(`CT ${vmid} not running`);
    const config = loadGuest(ctx, 'lxc', vmid, { inWorker: true });
    checkLock('lxc', config);
    markStopped(rt, vmid);
  });
}

function reboot(ctx: Ctx, vmid: string): void {
  ctx.begin([{ kind: 'lxc', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    // pve-container really says "VM" here.
    if (!isRunning(rt, vmid, ctx.root, 'lxc')) die(`VM ${vmid} not running`);
    const config = loadGuest(ctx, 'lxc', vmid, { inWorker: true });
    if (applyPending(config)) writeConfigFile(ctx.root, 'lxc', vmid, config);
    markRunning(rt, vmid, Date.now());
  });
}

function resize(ctx: Ctx, vmid: string, disk: string, sizeText: string): void {
  const grow = sizeText.startsWith('+');
  const request = parseSize(sizeText.replace(/^\+/, ''));
  if (request === undefined) die('invalid size string');
  loadGuest(ctx, 'lxc', vmid);
  ctx.begin([{ kind: 'lxc', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, 'lxc', vmid);
    checkLock('lxc', config);
    const value = config.main.props[disk];
    if (value === undefined) die(`unable to parse ${disk} - no such mount point '${disk}'`);
    const volid = parsePropertyString(value, 'volume').volume!;
    if (volid.startsWith('/')) die(`unable to resize mount point '${disk}' - bind mount`);
    const owner = /(?:^|\/|-)(\d+)-disk-\d+/.exec(parseVolid(volid).volname.split('/').pop()!)?.[1];
    if (owner !== undefined && owner !== vmid) die(`can't resize mount point owned by another container (${owner})`);
    const current = volumeSize(rt, volid);
    if (current === undefined) die(`Could not determine current size of volume '${volid}'`);
    const newSize = grow ? current + request : request;
    if (newSize < current) die('unable to shrink disk size');
    if (newSize === current) die('disk is already at specified size');
    setVolumeSize(rt, volid, newSize);
    const props = parsePropertyString(value, 'volume');
    props.size = formatSize(newSize);
    config.main.props[disk] = printPropertyString(props, 'volume');
    writeConfigFile(ctx.root, 'lxc', vmid, config);
  });
}

// ---------------------------------------------------------------------------
// snapshots

function snapshot(ctx: Ctx, vmid: string, name: string, description: string | undefined): void {
  if (name === 'current' || name === 'vzdump') die(`unable to use snapshot name '${name}' (reserved name)`);
  lockedTask(
    ctx,
    'lxc',
    vmid,
    'snapshot',
    (rt, config) => prepareSnapshot(rt, 'lxc', config, name),
    (rt, config) => createSnapshot(ctx, rt, 'lxc', vmid, config, name, description),
  );
}

function delsnapshot(ctx: Ctx, vmid: string, name: string, force: boolean): void {
  lockedTask(
    ctx,
    'lxc',
    vmid,
    'snapshot-delete',
    (_rt, config) => checkSnapshotDelete('lxc', config, name, force),
    (rt, config) => deleteSnapshot(ctx, rt, 'lxc', vmid, config, name),
  );
}

function rollback(ctx: Ctx, vmid: string, name: string, startAfter: boolean): void {
  lockedTask(
    ctx,
    'lxc',
    vmid,
    'rollback',
    (rt, config) => {
      checkRollback(rt, 'lxc', config, name);
      // PVE stops a running container before rolling it back.
      markStopped(rt, vmid);
    },
    (rt, config) => {
      const restored = rollbackSnapshot(ctx, rt, 'lxc', vmid, config, name);
      if (startAfter) markRunning(rt, vmid, Date.now());
      return restored;
    },
  );
}

// ---------------------------------------------------------------------------
// exec / push / pull

function guestFsFor(ctx: Ctx, vmid: string, config: GuestConfig): GuestFs {
  const mounts: HostMount[] = [];
  for (const [key, value] of Object.entries(config.main.props)) {
    if (!/^mp\d+$/.test(key)) continue;
    const props = parsePropertyString(value, 'volume');
    if (!props.volume!.startsWith('/') || !props.mp) continue;
    // A bind mount whose host directory exists is the host's directory, as in a real CT.
    // The simulated host's own files live under PHOENIX_HOST_ROOT (default <state>/hostfs,
    // as lib/core/env.mts has it); a directory there wins over the same path on the real machine.
    const hostRoot = hostRootOf(ctx);
    const host = [path.join(hostRoot, props.volume!), props.volume!].find((dir) => fs.existsSync(dir) && fs.statSync(dir).isDirectory());
    if (host) mounts.push({ guest: props.mp, host });
  }
  const base = guestFsDir(ctx.root, vmid);
  fs.mkdirSync(base, { recursive: true });
  return new GuestFs(base, mounts, idMapsOf(config).maps);
}

/** Does this command read its stdin (so the simulator must consume and count it)? */
export function readsStdin(argv: readonly string[]): boolean {
  const [program, ...args] = argv;
  if (program === undefined) return false;
  const name = path.posix.basename(program);
  if (['bash', 'sh', 'dash', 'ash'].includes(name)) {
    if (args.some((a) => /^-[a-zA-Z]*c[a-zA-Z]*$/.test(a))) return false;
    const firstOperand = args.find((a) => !a.startsWith('-'));
    return args.includes('-s') || firstOperand === undefined;
  }
  if (name === 'tee') return true;
  if (name === 'install') return args.includes('/dev/stdin');
  if (name === 'cat') return args.filter((a) => !a.startsWith('-') || a === '-').length === 0 || args.includes('-');
  return false;
}

function exec(ctx: Ctx, vmid: string, command: string[]): void {
  ctx.begin();
  const config = loadGuest(ctx, 'lxc', vmid);
  const rt = loadRuntime(ctx.root);
  if (!isRunning(rt, vmid, ctx.root, 'lxc')) die(`container '${vmid}' not running!`);
  if (command.length === 0) die('missing command at /usr/share/perl5/PVE/CLI/pct.pm line 246.');
  const stdin = readsStdin(command) ? ctx.stdin() : undefined;
  const rule = takeExecRule(ctx.root, ctx.injection, { tool: 'pct', guest: vmid, command, ...(stdin ? { stdin: stdin.toString('latin1') } : {}) });
  if (rule) {
    sleepSync((rule.duration_ms ?? 0) * timeScale(ctx.injection));
    throw new ToolExit(rule.exit ?? 0, rule.stderr ?? '', rule.stdout ?? '');
  }
  const result = runCommand(guestFsFor(ctx, vmid, config), command, { launcher: 'lxc-attach', vmid, root: ctx.root, ...(stdin ? { stdin } : {}) });
  throw new ToolExit(result.exit, result.stderr, result.stdout);
}

/** --user/--group as container ids (names looked up in the guest, as pct does after entering it). */
function ownerIds(g: GuestFs, user: string | undefined, group: string | undefined): { uid?: number; gid?: number } {
  const ids: { uid?: number; gid?: number } = {};
  if (user !== undefined) {
    const entry = /^\d+$/.test(user) ? { uid: Number(user) } : lookupUser(g, user);
    if (!entry) die(`failed to get uid for: ${user}`);
    ids.uid = entry.uid;
  }
  if (group !== undefined) {
    const entry = /^\d+$/.test(group) ? { gid: Number(group) } : lookupGroup(g, group);
    if (!entry) die(`failed to get gid for: ${group}`);
    ids.gid = entry.gid;
  }
  return ids;
}

function parsePerms(perms: string | undefined): number | undefined {
  if (perms === undefined) return undefined;
  const text = perms.startsWith('0') ? perms : `0${perms}`;
  if (!/^0[0-7]*$/.test(text) && !/^0x[0-9a-f]+$/i.test(text)) die(`invalid mode: '${text}'`);
  return parseInt(text, text.startsWith('0x') ? 16 : 8);
}

/** Open-or-create on the host (pull), as pct's create_file does: a new file gets 0666 & ~umask unless --perms says otherwise. */
function writeTarget(target: string, shownPath: string, data: Buffer, perms: number | undefined): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(target);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) die(`failed to create file: ${shownPath}: Is a directory`);
  if (!fs.existsSync(path.dirname(target))) die(`failed to create file: ${shownPath}: No such file or directory`);
  fs.writeFileSync(target, data);
  if (perms !== undefined) fs.chmodSync(target, perms);
  else if (!st) fs.chmodSync(target, 0o644);
}

function push(ctx: Ctx, vmid: string, file: string, destination: string, opts: Record<string, string>): void {
  ctx.begin([{ kind: 'lxc', vmid }]);
  const rt = loadRuntime(ctx.root);
  if (!isRunning(rt, vmid, ctx.root, 'lxc')) die('can only push files to a running CT');
  const config = loadGuest(ctx, 'lxc', vmid, { inWorker: true });
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch {
    die(`failed to open ${file} for reading`);
  }
  const g = guestFsFor(ctx, vmid, config);
  const perms = parsePerms(opts.perms);
  const owner = ownerIds(g, opts.user, opts.group);
  // pct writes from inside the container's namespaces, as container root, and
  // opens with O_NOFOLLOW: a symlink as the destination is refused (ELOOP).
  if (g.locate(destination, { follow: false }).stat?.isSymbolicLink()) die(`failed to create file: ${destination}: Too many levels of symbolic links`);
  const opened = openForWrite(g, CT_ROOT, destination);
  if (typeof opened === 'string') die(`failed to create file: ${destination}: ${ERRNO_TEXT[opened]}`);
  fs.writeFileSync(opened.loc.host, data);
  if (perms !== undefined) fs.chmodSync(opened.loc.host, perms);
  else if (opened.created) fs.chmodSync(opened.loc.host, 0o644);
  const loc = { ...opened.loc, stat: fs.lstatSync(opened.loc.host) };
  if (opened.created) g.created(CT_ROOT, loc);
  if (owner.uid !== undefined || owner.gid !== undefined) {
    const now = g.ctIds(loc.guest, fs.lstatSync(loc.host));
    const error = g.chownCt(loc, owner.uid ?? now.uid, owner.gid ?? now.gid);
    if (error) die(`failed to change file owner: ${ERRNO_TEXT[error]}`);
  }
}

function pull(ctx: Ctx, vmid: string, source: string, destination: string, opts: Record<string, string>): void {
  ctx.begin([{ kind: 'lxc', vmid }]);
  const rt = loadRuntime(ctx.root);
  // pve-container's message lacks the newline, so Perl appends where it died.
  if (!isRunning(rt, vmid, ctx.root, 'lxc')) die('can only pull files from a running VM at /usr/share/perl5/PVE/CLI/pct.pm line 645.');
  const config = loadGuest(ctx, 'lxc', vmid, { inWorker: true });
  const g = guestFsFor(ctx, vmid, config);
  const perms = parsePerms(opts.perms);
  // The destination is created first, so it exists (empty) even when the source cannot be read.
  writeTarget(path.resolve(destination), destination, Buffer.alloc(0), perms);
  const data = readAs(g, CT_ROOT, source);
  if (typeof data === 'string') die(`failed to open ${source}: ${ERRNO_TEXT[data]}`);
  fs.writeFileSync(path.resolve(destination), data);
}
