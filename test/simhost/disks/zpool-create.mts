// The simulated `zpool create`, with OpenZFS 2.x's device checks (its
// check_in_use / check_disk / check_slice / check_file on Linux):
//
// - a whole disk is opened exclusively first: something mounted on it or
//   device-mapper volumes on it fail with "warning: device in use checking
//   failed: Device or resource busy", -f or not;
// - a disk with a GPT has each partition checked: a file system is "<dev>
//   contains a filesystem of type 'ext4'", a pool label "<dev> is part of
//   exported pool 'x'" (refused unless -f) or "… active pool 'x'" (refused
//   even with -f);
// - a disk without a GPT is checked as one device: its own file-system or
//   pool signature, as above. A disk with only an MBR (dos) partition table
//   passes this check, partitions and all: OpenZFS relabels it without -f.
//   Phoenix's own disk checks (lib/hypervisor/disks.mts) are what protect
//   such a disk.
//
// The errors are listed under "invalid vdev specification" and "use '-f' to
// override the following errors:" (or, with -f, "the following errors must
// be manually repaired:"), exit 1. On success each whole disk gets a GPT with
// partition 1 (zfs_member, labelled with the pool) and partition 9 (8 MiB
// reserved), the pool is imported and its root dataset carries the -O
// properties. One vdev group (stripe, mirror or raidz1) per pool; other
// layouts, log/cache/spare/special vdevs and -R/-t are not simulated (exit 2).

import type { Ctx } from '../cli.mts';
import { loadRuntime, saveRuntime, ToolExit, withStateLock, type Runtime } from '../state.mts';
import { BY_ID, busyReason, importedPoolOf, loadDisks, locate, partitionName, partNumber, poolGuid, saveDisks, stableUuid, type DiskState, type Located, type SimBlock } from './model.mts';
import { getopt } from '../getopt.mts';

const USAGE = 'usage:\n\tcreate [-fnd] [-o property=value] ... \n\t    [-O file-system-property=value] ...\n\t    [-m mountpoint] [-R root] <pool> <vdev> ...\n';
const POOL_PROPERTIES = new Set(['ashift', 'autotrim', 'autoexpand', 'autoreplace', 'comment', 'compatibility', 'failmode', 'listsnapshots', 'multihost', 'cachefile']);
const MiB = 1024 ** 2;

function usage(message: string): never {
  throw new ToolExit(2, `${message}\n${USAGE}`);
}

interface CreateArgs {
  force: boolean;
  dryRun: boolean;
  mountpoint?: string;
  poolProps: string[];
  fsProps: string[];
  pool: string;
  vdevType: 'single' | 'mirror' | 'raidz1';
  devices: string[];
}

function parseCreate(args: readonly string[]): CreateArgs {
  const { flags, values, operands } = getopt(args, 'mRoOt', 'fnd', usage);
  if (values.R || values.t) throw new ToolExit(2, "simhost: 'zpool create -R/-t' is not simulated\n");
  const [pool, ...vdevArgs] = operands;
  if (!pool) usage('missing pool name argument');
  if (vdevArgs.length === 0) usage('missing vdev specification');
  for (const p of values.o ?? []) {
    const key = p.split('=')[0]!;
    if (!p.includes('=')) usage(`missing '=' for -o option`);
    if (!POOL_PROPERTIES.has(key) && !key.startsWith('feature@')) throw new ToolExit(2, `property '${key}' is not a valid pool or vdev property\n`);
  }
  for (const p of values.O ?? []) if (!p.includes('=')) usage(`missing '=' for -O option`);
  let vdevType: CreateArgs['vdevType'] = 'single';
  const keyword = /^(mirror|raidz[123]?|draid\S*|log|cache|spare|special|dedup)$/;
  const first = vdevArgs[0]!;
  let devices = vdevArgs;
  if (keyword.test(first)) {
    if (first === 'mirror') vdevType = 'mirror';
    else if (first === 'raidz' || first === 'raidz1') vdevType = 'raidz1';
    else throw new ToolExit(2, `simhost: 'zpool create … ${first}' is not simulated\n`);
    devices = vdevArgs.slice(1);
  }
  if (devices.some((d) => keyword.test(d))) throw new ToolExit(2, "simhost: 'zpool create' with more than one vdev group is not simulated\n");
  if (vdevType !== 'single' && devices.length < 2) throw new ToolExit(1, `invalid vdev specification: ${vdevType} requires at least 2 devices\n`);
  return {
    force: flags.has('f'),
    dryRun: flags.has('n'),
    ...(values.m ? { mountpoint: values.m.at(-1)! } : {}),
    poolProps: values.o ?? [],
    fsProps: values.O ?? [],
    pool,
    vdevType,
    devices,
  };
}

/** The path zpool uses for a partition of a disk named by `arg`. */
function slicePath(arg: string, part: SimBlock): string {
  const n = partNumber(part);
  if (arg.startsWith(BY_ID)) return `${arg}-part${n}`;
  return `${arg}${/\d$/.test(arg) ? 'p' : ''}${n}`;
}

/** check_slice / check_file on one device holding `node`'s signature. */
function checkSignature(node: SimBlock, shownAs: string, imported: string | undefined, force: boolean, errors: string[]): void {
  if (!node.fstype) return;
  if (node.fstype === 'zfs_member') {
    if (imported !== undefined && node.label === imported) errors.push(`${shownAs} is part of active pool '${node.label}'`);
    else if (!force) errors.push(`${shownAs} is part of exported pool '${node.label ?? ''}'`);
    return;
  }
  if (!force) errors.push(`${shownAs} contains a filesystem of type '${node.fstype}'`);
}

function resolveDevice(state: DiskState, arg: string): { path: string; found: Located } {
  if (arg.startsWith('/')) {
    const found = locate(state, arg);
    if (!found) throw new ToolExit(1, `cannot open '${arg}': No such file or directory\n`);
    return { path: arg, found };
  }
  for (const dir of ['/dev/', BY_ID]) {
    const found = locate(state, `${dir}${arg}`);
    if (found) return { path: `${dir}${arg}`, found };
  }
  throw new ToolExit(1, `cannot open '${arg}': no such device in /dev\nmust be a full path or shorthand device name\n`);
}

function label(state: DiskState, rt: Runtime, args: CreateArgs): void {
  const resolved = args.devices.map((d) => resolveDevice(state, d));
  const names = resolved.map((r) => r.found.node.name);
  if (new Set(names).size !== names.length) {
    throw new ToolExit(1, `cannot create '${args.pool}': one or more vdevs refer to the same device, or one of\nthe devices is part of an active md or lvm device\n`);
  }
  const warnings: string[] = [];
  const errors: string[] = [];
  for (const { path: arg, found } of resolved) {
    const busy = busyReason(state, rt, found);
    const imported = importedPoolOf(state, rt, found.disk);
    if (busy !== undefined && !busy.startsWith('vdev of imported pool')) {
      warnings.push('warning: device in use checking failed: Device or resource busy');
      continue;
    }
    if (found.node.type === 'disk' && found.node.pttype === 'gpt') {
      for (const part of found.node.children ?? []) checkSignature(part, slicePath(arg, part), imported, args.force, errors);
    } else {
      checkSignature(found.node, arg, imported, args.force, errors);
    }
  }
  if (warnings.length > 0) throw new ToolExit(1, `${warnings.join('\n')}\n`);
  if (errors.length > 0) {
    const header = args.force ? 'the following errors must be manually repaired:' : "use '-f' to override the following errors:";
    throw new ToolExit(1, `invalid vdev specification\n${header}\n${errors.join('\n')}\n`);
  }
  if (!/^[A-Za-z][A-Za-z0-9_.:-]*$/.test(args.pool)) throw new ToolExit(1, `cannot create '${args.pool}': invalid character in pool name\n`);
  if (/^(mirror|raidz|draid|spare|log|cache|special|dedup)/.test(args.pool)) throw new ToolExit(1, `cannot create '${args.pool}': name is reserved\n`);
  if (rt.zfs.pools[args.pool]) throw new ToolExit(1, `cannot create '${args.pool}': pool already exists\n`);
  if (args.dryRun) return;

  const guid = poolGuid(`${args.pool}:${resolved.map((r) => r.path).join(',')}`);
  const usable: number[] = [];
  for (const { found } of resolved) {
    const node = found.node;
    if (node.type === 'disk') {
      const dataSize = node.size - 10 * MiB;
      delete node.fstype;
      delete node.label;
      delete node.uuid;
      node.pttype = 'gpt';
      node.ptuuid = stableUuid(`gpt:${args.pool}:${node.name}`);
      node.children = [
        { name: partitionName(node.name, 1), type: 'part', size: dataSize, fstype: 'zfs_member', label: args.pool, uuid: guid },
        { name: partitionName(node.name, 9), type: 'part', size: 8 * MiB },
      ];
      usable.push(dataSize);
    } else {
      node.fstype = 'zfs_member';
      node.label = args.pool;
      node.uuid = guid;
      usable.push(node.size);
    }
  }
  const smallest = Math.min(...usable);
  const raw = args.vdevType === 'mirror' ? smallest : args.vdevType === 'raidz1' ? smallest * usable.length : usable.reduce((a, b) => a + b, 0);
  rt.zfs.pools[args.pool] = { size: Math.floor(raw / (512 * MiB)) * 512 * MiB, health: 'ONLINE', vdevs: resolved.map((r) => r.path), layout: args.vdevType };
  const props: Record<string, string> = {};
  for (const p of args.fsProps) props[p.slice(0, p.indexOf('='))] = p.slice(p.indexOf('=') + 1);
  if (args.mountpoint) props.mountpoint = args.mountpoint;
  rt.zfs.datasets[args.pool] = { type: 'filesystem', props, used: 96 * 1024, created: Date.now() };
}

export function runZpoolCreate(ctx: Ctx, argv: readonly string[]): void {
  const args = parseCreate(argv);
  withStateLock(ctx.root, () => {
    const state = loadDisks(ctx.root);
    const rt = loadRuntime(ctx.root);
    label(state, rt, args);
    if (args.dryRun) return;
    saveDisks(ctx.root, state);
    saveRuntime(ctx.root, rt);
  });
  if (args.dryRun) {
    const indent = args.vdevType === 'single' ? '\t  ' : '\t    ';
    const group = args.vdevType === 'single' ? '' : `\t  ${args.vdevType === 'raidz1' ? 'raidz1' : 'mirror'}\n`;
    ctx.out(`would create '${args.pool}' with the following layout:\n\n\t${args.pool}\n${group}${args.devices.map((d) => `${indent}${d.split('/').at(-1)}\n`).join('')}`);
  }
}
