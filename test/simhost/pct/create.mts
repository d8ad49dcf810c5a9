// `pct create`, and how pct turns a mount point or NIC option into config
// form (also used by `pct set`).

import fs from 'node:fs';

import { formatSize, usage } from '../args.mts';
import type { Ctx } from '../cli.mts';
import { createTask, parameterError, sortedByKey } from '../guest-common/config-edits.mts';
import { distroFor, populateGuest } from '../guestfs.mts';
import { checkVmidUnused, markRunning, markStopped, randomMac } from '../guests.mts';
import { parsePropertyString, printPropertyString, writeConfigFile } from '../pveconf.mts';
import { allocDisk, findVolume, parseVolid, storageOf, volumeForPath } from '../storage.mts';
import { die, type Runtime } from '../state.mts';
import { specs } from './schema.mts';

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
export function allocateMount(rt: Runtime, vmid: string, value: string, usage_: () => string): string {
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
  if (!storage.content.includes('rootdir')) parameterError(usage_(), 'storage', `storage '${storeid}' does not support container directories`);
  const bytes = Math.round(Number(m[2]) * 1024 ** 3);
  const volid = allocDisk(rt, storeid, vmid, bytes, 'ct');
  const rest = { ...props };
  delete rest.volume;
  rest.size = formatSize(bytes);
  return printPropertyString({ volume: volid, ...sortedByKey(rest) }, 'volume');
}

export function normalizeNet(value: string): string {
  const props = parsePropertyString(value);
  props.hwaddr ??= randomMac();
  props.type ??= 'veth';
  return printPropertyString(sortedByKey(props));
}

export function create(ctx: Ctx, vmid: string, ostemplate: string, opts: Record<string, string>, order: string[]): void {
  const startAfter = opts.start === '1';
  const usageText = () => usage(specs.create!);
  createTask(
    ctx,
    'lxc',
    vmid,
    (rt) => {
      checkVmidUnused(ctx, vmid);
      const resolved = resolveTemplate(rt, ostemplate);
      const storage = opts.storage ?? 'local';
      if (!rt.storage[storage]) die(`storage '${storage}' does not exist`);
      const rootfsStore = /^([^:,]+):/.exec(opts.rootfs ?? `${storage}:4`)?.[1];
      if (rootfsStore && !rootfsStore.startsWith('/') && rt.storage[rootfsStore] && !rt.storage[rootfsStore]!.content.includes('rootdir')) {
        parameterError(usageText(), 'storage', `storage '${rootfsStore}' does not support container directories`);
      }
      return resolved;
    },
    (rt, tmpl) => {
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
    },
  );
}
