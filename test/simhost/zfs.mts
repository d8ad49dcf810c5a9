// The simulated `zfs` and `zpool`: pools and datasets in the runtime
// state, the output formats of OpenZFS 2.x (tables, -H tab separation,
// human-readable numbers unless -p) and its refusals (missing parent or
// pool, existing dataset, children without -r, dependent clones).
// Disks that pct/qm allocate on zfspool storages appear here as datasets.

import type { Ctx } from './cli.mts';
import { die, loadRuntime, ToolExit, updateRuntime, type Runtime, type ZfsDataset } from './state.mts';
import { runZpoolCreate } from './disks/zpool-create.mts';
import { getopt as parseOptions, type Flags } from './getopt.mts';

/** OpenZFS's zfs_nicenum: 1024-based, three significant digits. */
export function nicenum(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${n}B`;
  const text = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${text.replace(/\.0+$/, '').replace(/(\.\d*[1-9])0+$/, '$1')}${units[i]}`;
}

function parseZfsSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([BKMGTPE])?B?$/i.exec(text);
  if (!m) return undefined;
  const power = 'BKMGTPE'.indexOf((m[2] ?? 'B').toUpperCase());
  return Math.round(Number(m[1]) * 1024 ** power);
}

function usageError(tool: string, message: string): never {
  throw new ToolExit(2, `${message}\nusage: ${tool} <command> args ...\nwhere 'command' is one of the following: (see ${tool}(8))\n`);
}

function poolOf(name: string): string {
  return name.split(/[/@]/)[0]!;
}

function parentOf(name: string): string | undefined {
  if (name.includes('@')) return name.slice(0, name.indexOf('@'));
  const i = name.lastIndexOf('/');
  return i === -1 ? undefined : name.slice(0, i);
}

function childrenOf(rt: Runtime, name: string): string[] {
  return Object.keys(rt.zfs.datasets).filter((d) => d.startsWith(`${name}/`) || d.startsWith(`${name}@`)).sort();
}

function poolUsed(rt: Runtime, pool: string): number {
  return Object.entries(rt.zfs.datasets)
    .filter(([n, d]) => poolOf(n) === pool && d.type !== 'snapshot')
    .reduce((s, [, d]) => s + d.used, 0);
}

function datasetUsed(rt: Runtime, name: string): number {
  const own = rt.zfs.datasets[name]?.used ?? 0;
  return own + childrenOf(rt, name).reduce((s, c) => s + (rt.zfs.datasets[c]!.type === 'snapshot' ? 0 : rt.zfs.datasets[c]!.used), 0);
}

const DEFAULTS: Record<string, string> = {
  compression: 'off',
  atime: 'on',
  relatime: 'on',
  sync: 'standard',
  recordsize: '128K',
  quota: 'none',
  refquota: 'none',
  reservation: 'none',
  refreservation: 'none',
  readonly: 'off',
  canmount: 'on',
  xattr: 'on',
  acltype: 'off',
  dedup: 'off',
  copies: '1',
  primarycache: 'all',
  secondarycache: 'all',
  snapdir: 'hidden',
  logbias: 'latency',
  sharenfs: 'off',
  sharesmb: 'off',
  volblocksize: '16K',
  encryption: 'off',
  special_small_blocks: '0',
  aclinherit: 'restricted',
};
const SETTABLE = new Set(Object.keys(DEFAULTS).filter((k) => k !== 'encryption').concat(['mountpoint', 'volsize']));
const INHERITABLE = new Set(['compression', 'atime', 'relatime', 'sync', 'recordsize', 'readonly', 'xattr', 'acltype', 'dedup', 'copies', 'primarycache', 'secondarycache', 'snapdir', 'logbias', 'sharenfs', 'sharesmb', 'aclinherit', 'special_small_blocks', 'canmount']);

function validateProp(name: string, key: string, value: string): void {
  if (key.includes(':')) return; // user property
  if (!SETTABLE.has(key)) die(`cannot set property for '${name}': invalid property '${key}'`, 1);
  const onoff = ['atime', 'relatime', 'readonly', 'dedup'];
  if (onoff.includes(key) && !['on', 'off'].includes(value)) die(`cannot set property for '${name}': '${key}' must be one of 'on | off'`, 1);
  if (key === 'compression' && !/^(on|off|lzjb|gzip(-[1-9])?|zle|lz4|zstd(-\d+)?|zstd-fast(-\d+)?)$/.test(value)) {
    die(`cannot set property for '${name}': 'compression' must be one of 'on | off | lzjb | gzip | gzip-[1-9] | zle | lz4 | zstd | zstd-[1-19] | zstd-fast | zstd-fast-[1-10,20,30,40,50,60,70,80,90,100,500,1000]'`, 1);
  }
  if (key === 'sync' && !['standard', 'always', 'disabled'].includes(value)) die(`cannot set property for '${name}': 'sync' must be one of 'standard | always | disabled'`, 1);
  if ((key === 'quota' || key === 'refquota' || key === 'reservation' || key === 'refreservation') && value !== 'none' && parseZfsSize(value) === undefined) {
    die(`cannot set property for '${name}': bad numeric value '${value}'`, 1);
  }
  if (key === 'recordsize') {
    const n = parseZfsSize(value);
    if (n === undefined || n < 512 || n > 16 * 1024 ** 2 || (n & (n - 1)) !== 0) die(`cannot set property for '${name}': 'recordsize' must be power of 2 from 512B to 16M`, 1);
  }
}

interface PropValue {
  value: string;
  exact: string;
  source: string;
}

function getProp(rt: Runtime, name: string, key: string): PropValue | undefined {
  const ds = rt.zfs.datasets[name];
  if (!ds) return undefined;
  const pool = rt.zfs.pools[poolOf(name)];
  const poolFree = pool ? Math.max(pool.size - poolUsed(rt, poolOf(name)), 0) : 0;
  const computed = (v: number): PropValue => ({ value: nicenum(v), exact: String(v), source: '-' });
  switch (key) {
    case 'name':
      return { value: name, exact: name, source: '-' };
    case 'type':
      return { value: ds.type, exact: ds.type, source: '-' };
    case 'used':
      return computed(datasetUsed(rt, name));
    case 'available':
    case 'avail':
    {
      if (ds.type === 'snapshot') return { value: '-', exact: '-', source: '-' };
      // A quota on the dataset or any ancestor caps what is available below it.
      let avail = poolFree;
      for (let a: string | undefined = name; a; a = parentOf(a)) {
        const quota = rt.zfs.datasets[a]?.props.quota;
        const limit = quota && quota !== 'none' ? parseZfsSize(quota) : undefined;
        if (limit !== undefined) avail = Math.min(avail, Math.max(limit - datasetUsed(rt, a), 0));
      }
      return computed(avail);
    }
    case 'referenced':
    case 'refer':
      return computed(ds.type === 'snapshot' ? 0 : Math.min(ds.used, 96 * 1024));
    case 'creation': {
      const d = new Date(ds.created);
      const text = d.toString().replace(/ GMT.*$/, '').replace(/^(\w+) (\w+) (\d+) (\d+) (\S+)$/, '$1 $2 $3 $5 $4');
      return { value: text, exact: String(Math.floor(ds.created / 1000)), source: '-' };
    }
    case 'mounted':
      return ds.type === 'filesystem' ? { value: 'yes', exact: 'yes', source: '-' } : { value: '-', exact: '-', source: '-' };
    case 'volsize':
      return ds.type === 'volume' ? { value: nicenum(ds.volsize ?? 0), exact: String(ds.volsize ?? 0), source: 'local' } : { value: '-', exact: '-', source: '-' };
    case 'origin':
      return { value: ds.props.origin ?? '-', exact: ds.props.origin ?? '-', source: '-' };
    case 'mountpoint': {
      if (ds.type !== 'filesystem') return { value: '-', exact: '-', source: '-' };
      if (ds.props.mountpoint) return { value: ds.props.mountpoint, exact: ds.props.mountpoint, source: 'local' };
      // Inherited: the nearest ancestor with a local mountpoint, plus the rest of the path.
      let ancestor = parentOf(name);
      while (ancestor) {
        const mp = rt.zfs.datasets[ancestor]?.props.mountpoint;
        if (mp) {
          const v = `${mp.replace(/\/$/, '')}${name.slice(ancestor.length)}`;
          return { value: v, exact: v, source: `inherited from ${ancestor}` };
        }
        ancestor = parentOf(ancestor);
      }
      return { value: `/${name}`, exact: `/${name}`, source: 'default' };
    }
  }
  if (ds.props[key] !== undefined && key !== 'origin') {
    const v = ds.props[key]!;
    const exact = parseZfsSize(v) !== undefined && /quota|reservation|recordsize/.test(key) ? String(parseZfsSize(v)) : v;
    return { value: v, exact, source: 'local' };
  }
  if (INHERITABLE.has(key)) {
    let ancestor = parentOf(name);
    while (ancestor) {
      const v = rt.zfs.datasets[ancestor]?.props[key];
      if (v !== undefined) return { value: v, exact: v, source: `inherited from ${ancestor}` };
      ancestor = parentOf(ancestor);
    }
  }
  if (DEFAULTS[key] !== undefined) return { value: DEFAULTS[key]!, exact: DEFAULTS[key] === 'none' ? '0' : DEFAULTS[key]!, source: 'default' };
  if (key.includes(':')) return { value: '-', exact: '-', source: '-' };
  return undefined;
}

/** The file system mounted at a path (its mountpoint property, local or inherited), as `pvesm add dir --is_mountpoint` checks it. */
export function mountedFilesystem(rt: Runtime, where: string): string | undefined {
  return Object.keys(rt.zfs.datasets).find((n) => rt.zfs.datasets[n]!.type === 'filesystem' && getProp(rt, n, 'mountpoint')?.value === where);
}

/** getopt for zfs/zpool, with this tool's usage error. */
function getopt(tool: string, args: readonly string[], withValue: string, plain: string): Flags {
  return parseOptions(args, withValue, plain, (message) => usageError(tool, message));
}

function table(rows: string[][], scripted: boolean, header: string[]): string {
  if (scripted) return rows.map((r) => `${r.join('\t')}\n`).join('');
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => `${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`).join('');
}

export function runZfs(ctx: Ctx): void {
  const [cmd, ...args] = ctx.argv;
  ctx.begin();
  switch (cmd) {
    case 'list':
      return zfsList(ctx, args);
    case 'get':
      return zfsGet(ctx, args);
    case 'create':
      return zfsCreate(ctx, args);
    case 'set':
      return zfsSet(ctx, args);
    case 'destroy':
      return zfsDestroy(ctx, args);
    case 'snapshot':
    case 'snap':
      return zfsSnapshot(ctx, args);
    case undefined:
      usageError('zfs', 'missing command');
    // falls through (usageError never returns)
    default:
      if (['rename', 'rollback', 'clone', 'promote', 'mount', 'unmount', 'inherit', 'send', 'receive', 'share', 'unshare', 'diff', 'hold', 'release', 'upgrade', 'userspace', 'groupspace', 'allow', 'unallow', 'bookmark', 'load-key', 'unload-key', 'change-key', 'program', 'wait', 'redact', 'project', 'projectspace', 'version', 'jail', 'unjail'].includes(cmd)) {
        throw new ToolExit(2, `simhost: 'zfs ${cmd}' is not simulated\n`);
      }
      usageError('zfs', `unrecognized command '${cmd}'`);
  }
}

function selectDatasets(rt: Runtime, operands: string[], recursive: boolean, depth: number | undefined, types: Set<string>, explicitTypes: boolean): string[] {
  const names = Object.keys(rt.zfs.datasets).sort();
  const out: string[] = [];
  const add = (n: string) => {
    if (!out.includes(n)) out.push(n);
  };
  const levelBelow = (n: string, base: string) => n.slice(base.length).split(/[/@]/).length - 1;
  if (operands.length === 0) {
    for (const n of names) {
      if (!types.has(rt.zfs.datasets[n]!.type)) continue;
      if (depth !== undefined && levelBelow(n, poolOf(n)) > depth) continue;
      add(n);
    }
    return out;
  }
  for (const op of operands) {
    const ds = rt.zfs.datasets[op];
    if (!ds) die(`cannot open '${op}': ${op.includes('@') ? 'snapshot' : 'dataset'} does not exist`, 1);
    // A dataset named on the command line is listed whatever its type, unless -t says otherwise.
    if (!explicitTypes || types.has(ds.type)) add(op);
    if (!recursive && depth === undefined) continue;
    for (const n of names) {
      if (!(n.startsWith(`${op}/`) || n.startsWith(`${op}@`))) continue;
      if (depth !== undefined && levelBelow(n, op) > depth) continue;
      if (types.has(rt.zfs.datasets[n]!.type)) add(n);
    }
  }
  return out;
}

function typeSet(values: string[] | undefined, listSnapshots: boolean): Set<string> {
  if (!values) return new Set(listSnapshots ? ['filesystem', 'volume', 'snapshot'] : ['filesystem', 'volume']);
  const set = new Set<string>();
  for (const t of values.join(',').split(',')) {
    const full = { fs: 'filesystem', vol: 'volume', snap: 'snapshot' }[t] ?? t;
    if (full === 'all') ['filesystem', 'volume', 'snapshot'].forEach((x) => set.add(x));
    else if (['filesystem', 'volume', 'snapshot', 'bookmark'].includes(full)) set.add(full);
    else usageError('zfs', `invalid type '${t}'`);
  }
  return set;
}

function zfsList(ctx: Ctx, args: string[]): void {
  const f = getopt('zfs', args, 'odtsS', 'Hprc');
  const rt = loadRuntime(ctx.root);
  const fields = (f.values.o?.join(',') ?? 'name,used,avail,refer,mountpoint').split(',');
  const depth = f.values.d ? Number(f.values.d[0]) : undefined;
  const types = typeSet(f.values.t, false);
  const names = selectDatasets(rt, f.operands, f.flags.has('r'), depth, types, f.values.t !== undefined);
  const exact = f.flags.has('p');
  const rows = names.map((n) => fields.map((field) => {
    const v = getProp(rt, n, field);
    if (!v) die(`bad property list: invalid property '${field}'`, 2);
    return exact ? v.exact : v.value;
  }));
  if (rows.length === 0 && !f.flags.has('H')) {
    ctx.out('no datasets available\n');
    return;
  }
  ctx.out(table(rows, f.flags.has('H'), fields.map((x) => x.toUpperCase())));
}

function zfsGet(ctx: Ctx, args: string[]): void {
  const f = getopt('zfs', args, 'osdt', 'Hpr');
  const [propList, ...targets] = f.operands;
  if (!propList) usageError('zfs', 'missing property argument');
  const rt = loadRuntime(ctx.root);
  const fields = (f.values.o?.join(',') ?? 'name,property,value,source').split(',');
  const names = selectDatasets(rt, targets, f.flags.has('r'), f.values.d ? Number(f.values.d[0]) : undefined, typeSet(f.values.t ?? ['all'], true), f.values.t !== undefined);
  const props = propList === 'all' ? ['type', 'creation', 'used', 'available', 'referenced', 'compression', 'mounted', 'quota', 'reservation', 'recordsize', 'mountpoint', 'sharenfs', 'atime', 'sync', 'xattr', 'acltype', 'refquota', 'volsize', 'origin'] : propList.split(',');
  const sources = f.values.s?.join(',').split(',');
  const rows: string[][] = [];
  for (const n of names) {
    for (const prop of props) {
      const v = getProp(rt, n, prop);
      if (!v) {
        if (propList === 'all') continue;
        die(`bad property list: invalid property '${prop}'`, 2);
      }
      const sourceKind = v.source.startsWith('inherited') ? 'inherited' : v.source === '-' ? 'none' : v.source;
      if (sources && !sources.includes(sourceKind)) continue;
      const row: Record<string, string> = { name: n, property: prop, value: f.flags.has('p') ? v.exact : v.value, source: v.source, received: '-' };
      rows.push(fields.map((field) => row[field] ?? '-'));
    }
  }
  ctx.out(table(rows, f.flags.has('H'), fields.map((x) => x.toUpperCase())));
}

function parseAssignments(name: string, pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) usageError('zfs', `missing '=' for property=value argument`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (key !== 'volsize') validateProp(name, key, value);
    out[key] = value;
  }
  return out;
}

function zfsCreate(ctx: Ctx, args: string[]): void {
  const f = getopt('zfs', args, 'oVb', 'psnPuv');
  const [name, ...extra] = f.operands;
  if (!name || extra.length > 0) usageError('zfs', name ? 'too many arguments' : 'missing filesystem argument');
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/.test(name) || name.endsWith('/') || name.includes('@')) die(`cannot create '${name}': invalid character in dataset name`, 1);
  const props = parseAssignments(name, f.values.o ?? []);
  updateRuntime(ctx.root, (rt) => {
    const pool = poolOf(name);
    if (!rt.zfs.pools[pool]) die(`cannot create '${name}': no such pool '${pool}'`, 1);
    if (rt.zfs.datasets[name]) die(`cannot create '${name}': dataset already exists`, 1);
    const parent = parentOf(name);
    const missing: string[] = [];
    for (let p = parent; p && !rt.zfs.datasets[p]; p = parentOf(p)) missing.unshift(p);
    if (missing.length > 0 && !f.flags.has('p')) die(`cannot create '${name}': parent does not exist`, 1);
    if (parent && rt.zfs.datasets[parent]?.type === 'volume') die(`cannot create '${name}': parent is not a filesystem`, 1);
    for (const m of missing) rt.zfs.datasets[m] = { type: 'filesystem', props: {}, used: 96 * 1024, created: Date.now() };
    const ds: ZfsDataset = { type: 'filesystem', props, used: 96 * 1024, created: Date.now() };
    if (f.values.V) {
      const size = parseZfsSize(f.values.V[0]!);
      if (size === undefined) die(`bad volume size '${f.values.V[0]}'`, 1);
      ds.type = 'volume';
      ds.volsize = size;
      ds.used = f.flags.has('s') ? 56 * 1024 : size;
    }
    rt.zfs.datasets[name] = ds;
  });
}

function zfsSet(ctx: Ctx, args: string[]): void {
  const f = getopt('zfs', args, '', 'u');
  const assignments = f.operands.filter((a) => a.includes('='));
  const names = f.operands.filter((a) => !a.includes('='));
  if (assignments.length === 0) usageError('zfs', 'missing property=value argument(s)');
  if (names.length === 0) usageError('zfs', 'missing dataset name(s)');
  updateRuntime(ctx.root, (rt) => {
    for (const name of names) {
      const ds = rt.zfs.datasets[name];
      if (!ds) die(`cannot open '${name}': dataset does not exist`, 1);
      const props = parseAssignments(name, assignments);
      for (const [k, v] of Object.entries(props)) {
        if (k === 'volsize') {
          if (ds.type !== 'volume') die(`cannot set property for '${name}': 'volsize' does not apply to datasets of this type`, 1);
          const size = parseZfsSize(v);
          if (size === undefined) die(`cannot set property for '${name}': bad numeric value '${v}'`, 1);
          ds.volsize = size;
        } else {
          ds.props[k] = v;
        }
      }
    }
  });
}

function zfsDestroy(ctx: Ctx, args: string[]): void {
  const f = getopt('zfs', args, '', 'rRfnpvd');
  const [name] = f.operands;
  if (!name) usageError('zfs', 'missing dataset argument');
  updateRuntime(ctx.root, (rt) => {
    if (!rt.zfs.datasets[name]) die(`cannot open '${name}': ${name.includes('@') ? 'snapshot' : 'dataset'} does not exist`, 1);
    if (!name.includes('/') && !name.includes('@')) die(`cannot destroy '${name}': operation does not apply to pools\nuse 'zfs destroy -r ${name}' to destroy all datasets in the pool\nuse 'zpool destroy ${name}' to destroy the pool itself`, 1);
    const children = childrenOf(rt, name);
    const dependents = Object.entries(rt.zfs.datasets)
      .filter(([n, d]) => d.props.origin !== undefined && (d.props.origin.startsWith(`${name}@`) || d.props.origin === name) && !n.startsWith(`${name}/`))
      .map(([n]) => n);
    if (dependents.length > 0 && !f.flags.has('R')) {
      die(`cannot destroy '${name}': ${name.includes('@') ? 'snapshot' : 'filesystem'} has dependent clones\nuse '-R' to destroy the following datasets:\n${dependents.join('\n')}`, 1);
    }
    if (children.length > 0 && !f.flags.has('r') && !f.flags.has('R')) {
      die(`cannot destroy '${name}': filesystem has children\nuse '-r' to destroy the following datasets:\n${children.join('\n')}`, 1);
    }
    for (const n of [...children, ...dependents, name]) delete rt.zfs.datasets[n];
  });
}

function zfsSnapshot(ctx: Ctx, args: string[]): void {
  const f = getopt('zfs', args, 'o', 'r');
  if (f.operands.length === 0) usageError('zfs', 'missing snapshot argument');
  updateRuntime(ctx.root, (rt) => {
    for (const snap of f.operands) {
      const at = snap.indexOf('@');
      if (at <= 0) die(`cannot create snapshot '${snap}': missing '@' delimiter in snapshot name`, 1);
      const ds = snap.slice(0, at);
      if (!rt.zfs.datasets[ds]) die(`cannot open '${ds}': dataset does not exist`, 1);
      const targets = f.flags.has('r') ? [ds, ...childrenOf(rt, ds).filter((c) => !c.includes('@'))] : [ds];
      for (const t of targets) {
        const name = `${t}${snap.slice(at)}`;
        if (rt.zfs.datasets[name]) die(`cannot create snapshot '${name}': dataset already exists`, 1);
        rt.zfs.datasets[name] = { type: 'snapshot', props: {}, used: 0, created: Date.now() };
      }
    }
  });
}

// ---------------------------------------------------------------------------
// zpool

export function runZpool(ctx: Ctx): void {
  const [cmd, ...args] = ctx.argv;
  ctx.begin();
  const rt = loadRuntime(ctx.root);
  switch (cmd) {
    case 'list': {
      const f = getopt('zpool', args, 'oT', 'HpPvgL');
      const fields = (f.values.o?.join(',') ?? 'name,size,alloc,free,ckpoint,expandsz,frag,cap,dedup,health,altroot').split(',');
      const pools = f.operands.length > 0 ? f.operands : Object.keys(rt.zfs.pools).sort();
      const rows: string[][] = [];
      for (const name of pools) {
        const pool = rt.zfs.pools[name];
        if (!pool) die(`cannot open '${name}': no such pool`, 1);
        const alloc = poolUsed(rt, name);
        const values: Record<string, [string, string]> = {
          name: [name, name],
          size: [nicenum(pool.size), String(pool.size)],
          alloc: [nicenum(alloc), String(alloc)],
          allocated: [nicenum(alloc), String(alloc)],
          free: [nicenum(pool.size - alloc), String(pool.size - alloc)],
          ckpoint: ['-', '-'],
          expandsz: ['-', '-'],
          frag: ['0%', '0'],
          cap: [`${Math.floor((alloc * 100) / pool.size)}%`, String(Math.floor((alloc * 100) / pool.size))],
          capacity: [`${Math.floor((alloc * 100) / pool.size)}%`, String(Math.floor((alloc * 100) / pool.size))],
          dedup: ['1.00x', '1.00'],
          health: [pool.health, pool.health],
          altroot: ['-', '-'],
        };
        rows.push(fields.map((field) => {
          const v = values[field];
          if (!v) die(`property '${field}' is not a valid pool or vdev property`, 2);
          return f.flags.has('p') ? v[1] : v[0];
        }));
      }
      if (rows.length === 0 && !f.flags.has('H')) {
        ctx.out('no pools available\n');
        return;
      }
      ctx.out(table(rows, f.flags.has('H'), fields.map((x) => x.toUpperCase())));
      return;
    }
    case 'status': {
      const f = getopt('zpool', args, 'cT', 'igLPsvxtDe');
      const pools = f.operands.length > 0 ? f.operands : Object.keys(rt.zfs.pools).sort();
      if (pools.length === 0) {
        ctx.out('no pools available\n');
        return;
      }
      let out = '';
      for (const name of pools) {
        const pool = rt.zfs.pools[name];
        if (!pool) die(`cannot open '${name}': no such pool`, 1);
        if (f.flags.has('x')) {
          out += `pool '${name}' is healthy\n`;
          continue;
        }
        const disks = pool.vdevs.map((d) => d.replace(/^\/dev\/disk\/by-id\//, ''));
        const width = Math.max(...disks.map((d) => d.length + 4), name.length + 2, 12);
        const line = (label: string, indent: number) => `\t${' '.repeat(indent)}${label.padEnd(width - indent)}  ONLINE       0     0     0\n`;
        out += `  pool: ${name}\n state: ${pool.health}\nconfig:\n\n\t${'NAME'.padEnd(width)}  STATE     READ WRITE CKSUM\n`;
        out += line(name, 0);
        if (pool.layout === 'mirror' || pool.layout === 'raidz1') {
          out += line(pool.layout === 'mirror' ? 'mirror-0' : 'raidz1-0', 2);
          for (const d of disks) out += line(d, 4);
        } else {
          for (const d of disks) out += line(d, 2);
        }
        out += '\nerrors: No known data errors\n';
        if (pools.length > 1) out += '\n';
      }
      ctx.out(out);
      return;
    }
    case 'create':
      return runZpoolCreate(ctx, args);
    case undefined:
      usageError('zpool', 'missing command');
    // falls through (usageError never returns)
    default:
      if (['destroy', 'add', 'remove', 'import', 'export', 'get', 'set', 'scrub', 'trim', 'iostat', 'history', 'events', 'upgrade', 'attach', 'detach', 'replace', 'online', 'offline', 'clear', 'labelclear', 'initialize', 'resilver', 'sync', 'wait', 'checkpoint', 'split', 'reguid', 'reopen', 'version'].includes(cmd)) {
        throw new ToolExit(2, `simhost: 'zpool ${cmd}' is not simulated\n`);
      }
      usageError('zpool', `unrecognized command '${cmd}'`);
  }
}
