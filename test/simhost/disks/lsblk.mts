// The simulated `lsblk` (util-linux 2.38, as on Proxmox VE 8 / Debian 12):
// every disk with what lies below it, or the named devices (any path the
// kernel or udev knows: /dev/sdb, /dev/disk/by-id/…, a partition). JSON as
// libsmartcols writes it: {"blockdevices": [...]}, lower-case column names,
// null for an empty value, SIZE a number with --bytes, RO/RM booleans,
// children nested under "children" unless --nodeps. A path that is no block
// device: "lsblk: <path>: not a block device"; exit 32 when none of the
// named devices was found, 64 when only some were.

import type { Ctx } from '../cli.mts';
import { ToolExit } from '../state.mts';
import { devicePath, humanSize, loadDisks, locate, type Located, type SimBlock, type SimDisk } from './model.mts';
import { parseOptions } from './opts.mts';

const COLUMNS = ['NAME', 'KNAME', 'PATH', 'SIZE', 'MODEL', 'SERIAL', 'TRAN', 'TYPE', 'FSTYPE', 'LABEL', 'UUID', 'PTTYPE', 'PTUUID', 'MOUNTPOINT', 'PKNAME', 'RO', 'RM'] as const;
type Column = (typeof COLUMNS)[number];
const DEFAULT_COLUMNS: Column[] = ['NAME', 'SIZE', 'RO', 'TYPE', 'MOUNTPOINT'];

type Value = string | number | boolean | null;

interface Row {
  values: Record<string, Value>;
  children: Row[];
}

function cell(column: Column, node: SimBlock, disk: SimDisk, parent: SimBlock | undefined, options: { bytes: boolean; fullPaths: boolean }): Value {
  const isDisk = node.type === 'disk';
  switch (column) {
    case 'NAME':
      return options.fullPaths ? devicePath(node) : node.name;
    case 'KNAME':
      return node.name;
    case 'PATH':
      return devicePath(node);
    case 'SIZE':
      return options.bytes ? node.size : humanSize(node.size);
    case 'MODEL':
      return isDisk ? disk.model : null;
    case 'SERIAL':
      return isDisk ? disk.serial : null;
    case 'TRAN':
      return isDisk ? disk.tran : null;
    case 'TYPE':
      return node.type;
    case 'FSTYPE':
      return node.fstype ?? null;
    case 'LABEL':
      return node.label ?? null;
    case 'UUID':
      return node.uuid ?? null;
    case 'PTTYPE':
      // udev reports the table a partition belongs to as well as the disk's own.
      return node.pttype ?? (node.type === 'part' ? (parent?.pttype ?? null) : null);
    case 'PTUUID':
      return node.ptuuid ?? (node.type === 'part' ? (parent?.ptuuid ?? null) : null);
    case 'MOUNTPOINT':
      return node.mountpoint ?? null;
    case 'PKNAME':
      return parent ? (options.fullPaths ? devicePath(parent) : parent.name) : null;
    case 'RO':
    case 'RM':
      return false;
  }
}

function buildRow(columns: Column[], node: SimBlock, disk: SimDisk, parent: SimBlock | undefined, options: { bytes: boolean; fullPaths: boolean; nodeps: boolean }): Row {
  const values: Record<string, Value> = {};
  for (const c of columns) values[c.toLowerCase()] = cell(c, node, disk, parent, options);
  const children = options.nodeps ? [] : (node.children ?? []).map((child) => buildRow(columns, child, disk, node, options));
  return { values, children };
}

function toJson(row: Row): Record<string, unknown> {
  return row.children.length > 0 ? { ...row.values, children: row.children.map(toJson) } : { ...row.values };
}

function textTable(columns: Column[], rows: Row[], headings: boolean): string {
  const lines: string[][] = [];
  const visit = (row: Row, prefix: string, childPrefix: string) => {
    lines.push(columns.map((c, i) => {
      const v = row.values[c.toLowerCase()];
      const text = v === null || v === undefined ? '' : typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
      return i === 0 ? `${prefix}${text}` : text;
    }));
    row.children.forEach((child, k) => {
      const last = k === row.children.length - 1;
      visit(child, `${childPrefix}${last ? '└─' : '├─'}`, `${childPrefix}${last ? '  ' : '│ '}`);
    });
  };
  for (const row of rows) visit(row, '', '');
  const all = headings ? [columns.map((c) => c), ...lines] : lines;
  const widths = columns.map((_, i) => Math.max(...all.map((l) => [...l[i]!].length)));
  return all.map((l) => `${l.map((c, i) => (i === l.length - 1 ? c : c + ' '.repeat(widths[i]! - [...c].length))).join(' ').trimEnd()}\n`).join('');
}

export function runLsblk(ctx: Ctx): void {
  const parsed = parseOptions('lsblk', ctx.argv, [
    { short: 'J', long: 'json' },
    { short: 'b', long: 'bytes' },
    { short: 'o', long: 'output', value: true },
    { short: 'd', long: 'nodeps' },
    { short: 'p', long: 'paths' },
    { short: 'n', long: 'noheadings' },
    { short: 'a', long: 'all' },
  ]);
  ctx.begin();
  const has = (name: string) => parsed.seen.has(name);
  const columns: Column[] = [];
  for (const list of parsed.seen.get('output') ?? [DEFAULT_COLUMNS.join(',')]) {
    // "+COL" adds to the default columns, as in util-linux.
    const words = list.startsWith('+') ? [...DEFAULT_COLUMNS, ...list.slice(1).split(',')] : list.split(',');
    for (const word of words) {
      const column = word.toUpperCase() as Column;
      if (!COLUMNS.includes(column)) throw new ToolExit(1, `lsblk: unknown column: ${word}\n`);
      columns.push(column);
    }
  }
  const options = { bytes: has('bytes'), fullPaths: has('paths'), nodeps: has('nodeps') };
  const state = loadDisks(ctx.root);
  const rows: Row[] = [];
  let missing = 0;
  if (parsed.operands.length === 0) {
    for (const disk of state.disks) rows.push(buildRow(columns, disk, disk, undefined, options));
  } else {
    for (const operand of parsed.operands) {
      const found: Located | undefined = locate(state, operand);
      if (!found) {
        ctx.err(`lsblk: ${operand}: not a block device\n`);
        missing++;
        continue;
      }
      rows.push(buildRow(columns, found.node, found.disk, found.parent, options));
    }
  }
  if (rows.length > 0) {
    ctx.out(has('json') ? `${JSON.stringify({ blockdevices: rows.map(toJson) }, null, 3)}\n` : textTable(columns, rows, !has('noheadings')));
  }
  if (missing > 0) throw new ToolExit(missing === parsed.operands.length ? 32 : 64, '');
}
