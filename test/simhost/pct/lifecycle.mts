// `pct start`, `pct stop` (and shutdown) and `pct resize`.

import { formatSize, parseSize } from '../args.mts';
import type { Ctx } from '../cli.mts';
import { mutateGuest } from '../guest-common/config-edits.mts';
import { applyPending, checkLock, isRunning, isTemplate, loadGuest, markRunning, markStopped } from '../guests.mts';
import { idMapsOf, startFailure } from '../idmap.mts';
import { parsePropertyString, printPropertyString, writeConfigFile } from '../pveconf.mts';
import { parseVolid, setVolumeSize, volumeSize } from '../storage.mts';
import { die, updateRuntime } from '../state.mts';
import { hostRootOf } from './guest-files.mts';

export function start(ctx: Ctx, vmid: string, skiplock: boolean): void {
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

export function stop(ctx: Ctx, vmid: string): void {
  ctx.begin([{ kind: 'lxc', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    if (!isRunning(rt, vmid, ctx.root, 'lxc')) die(`CT ${vmid} not running`);
    const config = loadGuest(ctx, 'lxc', vmid, { inWorker: true });
    checkLock('lxc', config);
    markStopped(rt, vmid);
  });
}

export function resize(ctx: Ctx, vmid: string, disk: string, sizeText: string): void {
  const grow = sizeText.startsWith('+');
  const request = parseSize(sizeText.replace(/^\+/, ''));
  if (request === undefined) die('invalid size string');
  loadGuest(ctx, 'lxc', vmid);
  mutateGuest(ctx, 'lxc', vmid, false, (rt, config) => {
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
  });
}
