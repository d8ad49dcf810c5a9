// `qm start`, `qm stop` (and shutdown), `qm reboot`, `qm destroy` and
// `qm template`.

import fs from 'node:fs';
import path from 'node:path';

import type { Ctx } from '../cli.mts';
import { mutateGuest } from '../guest-common/config-edits.mts';
import { rebootCommand } from '../guest-common/run-state.mts';
import { freeGuestVolumes, freeUnusedVolume } from '../guest-common/volumes.mts';
import { removeGuestTree } from '../guestfs.mts';
import { applyPending, checkLock, checkProtection, guestVolumes, isRunning, isTemplate, loadGuest, markRunning, markStopped, removeFirewallConf, replaceVolume } from '../guests.mts';
import { agentDelayMs } from '../inject.mts';
import { readConfigFile, writeConfigFile } from '../pveconf.mts';
import { convertToBase, listVolumes } from '../storage.mts';
import { die, updateRuntime } from '../state.mts';

/** qemu-server's check_running: a missing config is its own error. */
export function assertExists(ctx: Ctx, vmid: string, inWorker: boolean): void {
  if (!readConfigFile(ctx.root, 'qemu', vmid)) die(`unable to find configuration file for VM ${vmid} on node '${ctx.host.node}'`, inWorker ? 255 : 2);
}

export function start(ctx: Ctx, vmid: string, skiplock: boolean): void {
  ctx.begin([{ kind: 'qemu', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, 'qemu', vmid, { inWorker: true });
    if (isTemplate(config)) die("you can't start a vm if it's a template");
    if (!skiplock && config.main.props.lock !== 'suspended') checkLock('qemu', config);
    if (isRunning(rt, vmid, ctx.root, 'qemu')) die(`VM ${vmid} already running`);
    if (applyPending(config)) writeConfigFile(ctx.root, 'qemu', vmid, config);
    markRunning(rt, vmid, Date.now(), agentDelayMs(ctx.injection, vmid));
  });
}

export function stop(ctx: Ctx, vmid: string): void {
  ctx.begin([{ kind: 'qemu', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    assertExists(ctx, vmid, true);
    // qemu-server returns quietly when the VM is not running.
    if (!isRunning(rt, vmid, ctx.root, 'qemu')) return;
    const config = loadGuest(ctx, 'qemu', vmid, { inWorker: true });
    checkLock('qemu', config);
    markStopped(rt, vmid);
  });
}

export function reboot(ctx: Ctx, vmid: string): void {
  assertExists(ctx, vmid, false);
  rebootCommand(ctx, 'qemu', vmid, agentDelayMs(ctx.injection, vmid));
}

export function destroy(ctx: Ctx, vmid: string, opts: Record<string, string>): void {
  loadGuest(ctx, 'qemu', vmid);
  ctx.begin([{ kind: 'qemu', vmid }]);
  updateRuntime(ctx.root, (rt) => {
    const config = loadGuest(ctx, 'qemu', vmid);
    checkProtection(config, `can't remove VM ${vmid}`);
    if (opts.skiplock !== '1') checkLock('qemu', config);
    if (isRunning(rt, vmid, ctx.root, 'qemu')) die(`VM ${vmid} is running - destroy failed`);
    freeGuestVolumes(rt, config, 'qemu');
    if (opts['destroy-unreferenced-disks'] !== '0') {
      for (const id of Object.keys(rt.storage)) {
        for (const v of listVolumes(rt, id)) if (String(v.vmid) === vmid && v.content === 'images') {
          freeUnusedVolume(rt, 'qemu', v.volid);
        }
      }
    }
    removeFirewallConf(ctx.root, vmid);
    if (opts.purge === '1') ctx.out(`purging VM ${vmid} from related configurations..\n`);
    fs.rmSync(path.join(ctx.root, 'pve', 'qemu-server', `${vmid}.conf`), { force: true });
    delete rt.guests[vmid];
    delete rt.agentExec[vmid];
    removeGuestTree(ctx.root, vmid);
  });
}

export function template(ctx: Ctx, vmid: string): void {
  loadGuest(ctx, 'qemu', vmid);
  mutateGuest(ctx, 'qemu', vmid, false, (rt, config) => {
    checkLock('qemu', config);
    if (Object.keys(config.snapshots).length > 0) die('unable to create template, because VM contains snapshots');
    if (isTemplate(config)) die("you can't convert a template to a template");
    if (isRunning(rt, vmid, ctx.root, 'qemu')) die("you can't convert a VM to template if VM is running");
    for (const [key, volid] of guestVolumes('qemu', config.main)) {
      if (key.startsWith('unused') || /cloudinit/.test(volid)) continue;
      config.main.props[key] = replaceVolume(config.main.props[key]!, convertToBase(rt, volid), false);
    }
    config.main.props.template = '1';
  });
}
