// A VM's disks: allocating, attaching and importing them as qemu-server
// does for create/set (`STORE:SIZE`, `import-from=`, cloud-init drives,
// ISOs), `qm disk import` and `qm disk resize`.

import fs from 'node:fs';
import path from 'node:path';

import { formatSize, parseSize } from '../args.mts';
import type { Ctx } from '../cli.mts';
import { mutateGuest } from '../guest-common/config-edits.mts';
import { guestFsDir, populateGuest } from '../guestfs.mts';
import { checkLock, nextUnused } from '../guests.mts';
import { allocDisk, findVolume, parseVolid, setVolumeSize, storageOf, volumeForPath, volumeSize } from '../storage.mts';
import { die, type Runtime } from '../state.mts';

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
export function prepareDisk(ctx: Ctx, rt: Runtime, vmid: string, value: string): string {
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

export function defaultBoot(props: Record<string, string>): string | undefined {
  const order: string[] = [];
  for (const key of Object.keys(props).sort()) {
    if (/^(scsi|virtio|sata|ide)\d+$/.test(key) && !/cloudinit/.test(props[key]!)) order.push(key);
  }
  for (const key of Object.keys(props).sort()) if (/^net\d+$/.test(key)) order.push(key);
  return order.length > 0 ? `order=${order.join(';')}` : undefined;
}

export function importDisk(ctx: Ctx, vmid: string, source: string, storeid: string, format: string | undefined): void {
  let result = '';
  mutateGuest(ctx, 'qemu', vmid, false, (rt, config) => {
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

export function resize(ctx: Ctx, vmid: string, disk: string, sizeText: string): void {
  mutateGuest(ctx, 'qemu', vmid, true, (rt, config) => {
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
