// `pct clone`, `pct destroy` and `pct template`.

import fs from 'node:fs';
import path from 'node:path';

import type { Ctx } from '../cli.mts';
import { mutateGuest, placeholderConfig, removeStub, sortedByKey } from '../guest-common/config-edits.mts';
import { freeGuestVolumes } from '../guest-common/volumes.mts';
import { copyGuestTree, guestFsDir, removeGuestTree } from '../guestfs.mts';
import {
  checkLock,
  checkProtection,
  checkVmidUnused,
  cloneFirewallConf,
  dropLockMark,
  guestVolumes,
  isRunning,
  isTemplate,
  loadGuest,
  markStopped,
  randomMac,
  removeFirewallConf,
  replaceVolume,
} from '../guests.mts';
import { parsePropertyString, printPropertyString, writeConfigFile } from '../pveconf.mts';
import { allocDisk, convertToBase, freeVolume, linkedClone, listVolumes, parseVolid, storageOf, volumeSize } from '../storage.mts';
import { die, updateRuntime } from '../state.mts';

export function clone(ctx: Ctx, vmid: string, newid: string, opts: Record<string, string>): void {
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
      writeConfigFile(ctx.root, 'lxc', newid, placeholderConfig('create'));
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
          props[key] = printPropertyString(sortedByKey(net));
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

export function destroy(ctx: Ctx, vmid: string, opts: Record<string, string>): void {
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

export function template(ctx: Ctx, vmid: string): void {
  loadGuest(ctx, 'lxc', vmid);
  mutateGuest(ctx, 'lxc', vmid, false, (rt, config) => {
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
  });
}
