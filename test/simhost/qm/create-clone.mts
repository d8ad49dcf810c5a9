// `qm create` and `qm clone`, and how qm prints a NIC (also for `qm set`).

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';

import type { Ctx } from '../cli.mts';
import { createTask, placeholderConfig, removeStub, sortedByKey } from '../guest-common/config-edits.mts';
import { copyGuestTree, guestFsDir } from '../guestfs.mts';
import { checkLock, cloneFirewallConf, isTemplate, loadGuest, markRunning, markStopped, randomMac, replaceVolume, typeWord, VM_DISK_KEY } from '../guests.mts';
import { agentDelayMs } from '../inject.mts';
import { guestKindOf, readConfigFile, writeConfigFile } from '../pveconf.mts';
import { allocDisk, findVolume, linkedClone, parseVolid } from '../storage.mts';
import { die, updateRuntime } from '../state.mts';
import { defaultBoot, prepareDisk } from './disks.mts';
import { NIC_MODELS } from './schema.mts';

/** "virtio,bridge=vmbr0" → "virtio=BC:24:11:…,bridge=vmbr0,…" as qemu-server prints a NIC. */
export function normalizeNic(value: string, previousMac?: string): string {
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
  return [`${model}=${mac}`, ...(bridge !== undefined ? [`bridge=${bridge}`] : []), ...Object.entries(sortedByKey(rest)).map(([k, v]) => `${k}=${v}`)].join(',');
}

export function create(ctx: Ctx, vmid: string, opts: Record<string, string>, order: string[]): void {
  if (opts.archive) die('simhost: qm create --archive (restore) is not simulated');
  createTask(
    ctx,
    'qemu',
    vmid,
    () => {
      const existing = guestKindOf(ctx.root, vmid);
      if (existing) die(`unable to create VM ${vmid} - ${typeWord(existing)} ${vmid} already exists on node '${ctx.host.node}'`);
    },
    (rt) => {
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
    },
  );
}

export function clone(ctx: Ctx, vmid: string, newid: string, opts: Record<string, string>): void {
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
    writeConfigFile(ctx.root, 'qemu', newid, placeholderConfig('clone'));
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
