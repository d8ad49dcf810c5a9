// The simulated `blkid` (util-linux 2.38). With -p (low-level probe) it
// reads the device itself: the file system or pool label on it (TYPE,
// LABEL, UUID, USAGE), its partition table (PTTYPE, PTUUID) and, for a
// partition, its entry (PART_ENTRY_*). Exit 2 when nothing is found or the
// device cannot be opened ("blkid: error: <dev>: No such file or
// directory"). -o export prints DEVNAME= and KEY=value lines, values with
// shell-special characters backslash-escaped; -o value only the values;
// the default ("full") format is `<dev>: KEY="value" …`. -s limits the tags.

import type { Ctx } from '../cli.mts';
import { ToolExit } from '../state.mts';
import { devicePath, loadDisks, locate, partNumber, SECTOR, walk, type Located } from './model.mts';
import { parseOptions } from './opts.mts';

const USAGE: Record<string, string> = { LVM2_member: 'raid', swap: 'other', crypto_LUKS: 'crypto' };
const VERSION: Record<string, string> = { ext4: '1.0', ext3: '1.0', ext2: '1.0', zfs_member: '5000', LVM2_member: 'LVM2 001', swap: '1' };

/** What a low-level probe of one device reports, in libblkid's order. */
export function probe(found: Located, lowLevel: boolean): Array<[string, string]> {
  const { node, parent } = found;
  const tags: Array<[string, string]> = [];
  if (node.fstype) {
    if (node.label) tags.push(['LABEL', node.label]);
    if (node.uuid) tags.push(['UUID', node.uuid]);
    if (node.fstype === 'zfs_member' && node.uuid) tags.push(['UUID_SUB', node.uuid.split('').reverse().join('')]);
    if (VERSION[node.fstype]) tags.push(['VERSION', VERSION[node.fstype]!]);
    if (/^ext[234]$|^xfs$|^vfat$|^btrfs$/.test(node.fstype)) tags.push(['BLOCK_SIZE', node.fstype === 'vfat' ? '512' : '4096']);
    tags.push(['TYPE', node.fstype]);
    if (lowLevel) tags.push(['USAGE', USAGE[node.fstype] ?? 'filesystem']);
  }
  if (node.pttype) {
    if (node.ptuuid) tags.push(['PTUUID', node.ptuuid]);
    tags.push(['PTTYPE', node.pttype]);
  }
  if (lowLevel && node.type === 'part' && parent?.pttype) {
    tags.push(['PART_ENTRY_SCHEME', parent.pttype]);
    tags.push(['PART_ENTRY_NUMBER', String(partNumber(node))]);
    tags.push(['PART_ENTRY_SIZE', String(Math.floor(node.size / SECTOR))]);
  }
  return tags;
}

function exportValue(value: string): string {
  return value.replace(/([^A-Za-z0-9_.:/,+@%=-])/g, '\\$1');
}

export function runBlkid(ctx: Ctx): void {
  const parsed = parseOptions('blkid', ctx.argv, [
    { short: 'p', long: 'probe' },
    { short: 'o', long: 'output', value: true },
    { short: 's', long: 'match-tag', value: true },
    { short: 'c', long: 'cache-file', value: true },
  ]);
  ctx.begin();
  const format = parsed.seen.get('output')?.at(-1) ?? 'full';
  if (!['full', 'value', 'export', 'device'].includes(format)) throw new ToolExit(4, `blkid: unsupported output format ${format}\n`);
  const only = parsed.seen.get('match-tag');
  const lowLevel = parsed.seen.has('probe');
  const state = loadDisks(ctx.root);
  let devices = parsed.operands;
  if (devices.length === 0) {
    if (lowLevel) throw new ToolExit(4, 'blkid: low-level probing requires a device\n');
    devices = state.disks.flatMap((d) => [...walk(d)].map(({ node }) => devicePath(node)));
  }
  let anyFound = false;
  let notOpened = false;
  for (const dev of devices) {
    const found = locate(state, dev);
    if (!found) {
      if (lowLevel) ctx.err(`blkid: error: ${dev}: No such file or directory\n`);
      notOpened = true;
      continue;
    }
    const tags = probe(found, lowLevel).filter(([k]) => !only || only.includes(k));
    if (tags.length === 0) continue;
    anyFound = true;
    if (format === 'export') ctx.out(`DEVNAME=${dev}\n${tags.map(([k, v]) => `${k}=${exportValue(v)}\n`).join('')}${devices.length > 1 ? '\n' : ''}`);
    else if (format === 'value') ctx.out(tags.map(([, v]) => `${v}\n`).join(''));
    else if (format === 'device') ctx.out(`${dev}\n`);
    else ctx.out(`${dev}: ${tags.map(([k, v]) => `${k}="${v}"`).join(' ')}\n`);
  }
  if (!anyFound || (lowLevel && notOpened && devices.length === 1)) throw new ToolExit(2, '');
}
