// `qm set`: options changed, deleted or reverted under the config lock;
// hardware a running VM cannot take live waits in [pve:pending].

import { usage } from '../args.mts';
import type { Ctx } from '../cli.mts';
import { mutateGuest, parameterError, revertPending, setRequest, storeOption } from '../guest-common/config-edits.mts';
import { freeUnusedVolume } from '../guest-common/volumes.mts';
import { checkLock, checkProtection, isRunning, nextUnused, VM_DISK_KEY } from '../guests.mts';
import { findVolume } from '../storage.mts';
import { normalizeNic } from './create-clone.mts';
import { prepareDisk } from './disks.mts';
import { NOT_HOTPLUGGABLE, specs, vmOption } from './schema.mts';

export function set(ctx: Ctx, vmid: string, opts: Record<string, string>, order: string[]): void {
  const { changes, deletes, reverts } = setRequest(opts, order, ['delete', 'revert', 'digest', 'skiplock', 'force']);
  const usageText = usage(specs.set!);
  const paramError = (name: string, reason: string): never => parameterError(usageText, name, reason);
  for (const opt of deletes) {
    if (!vmOption(opt)) paramError('delete', `invalid format - invalid configuration ID '${opt}'`);
    if (changes.includes(opt)) paramError('delete', `you can't use '-${opt}' and -delete ${opt}' at the same time`);
  }
  mutateGuest(ctx, 'qemu', vmid, false, (rt, config) => {
    if (opts.skiplock !== '1') checkLock('qemu', config);
    const running = isRunning(rt, vmid, ctx.root, 'qemu');
    revertPending(config, reverts);
    for (const opt of deletes) {
      if (opt === 'description') {
        config.main.description = '';
        continue;
      }
      const old = config.main.props[opt];
      if (old === undefined) continue;
      if (VM_DISK_KEY.test(opt)) checkProtection(config, `can't remove VM ${vmid} drive '${opt}'`);
      delete config.main.props[opt];
      if (VM_DISK_KEY.test(opt) && !opt.startsWith('unused')) {
        const volid = old.split(',')[0]!;
        if (/:/.test(volid) && !/media=cdrom/.test(old) && findVolume(rt, volid)) config.main.props[nextUnused(config.main)] = volid;
        if (/cloudinit/.test(volid) && findVolume(rt, volid)) freeUnusedVolume(rt, 'qemu', volid);
      } else if (opt.startsWith('unused')) {
        freeUnusedVolume(rt, 'qemu', old);
      }
    }
    for (const opt of changes) {
      let value = opts[opt]!;
      if (opt === 'description') {
        config.main.description = value;
        continue;
      }
      if (VM_DISK_KEY.test(opt) && !opt.startsWith('unused')) {
        const attached = value.split(',')[0]!;
        value = prepareDisk(ctx, rt, vmid, value);
        // Attaching an unused volume moves it out of the unusedN list.
        for (const [k, v] of Object.entries(config.main.props)) if (/^unused\d+$/.test(k) && v === attached) delete config.main.props[k];
        const old = config.main.props[opt];
        if (old !== undefined) {
          const oldVol = old.split(',')[0]!;
          if (oldVol !== value.split(',')[0] && /:/.test(oldVol) && !/media=cdrom/.test(old)) config.main.props[nextUnused(config.main)] = oldVol;
        }
      }
      if (/^net\d+$/.test(opt)) {
        const previousMac = /^\w+=([0-9A-Fa-f:]{17})/.exec(config.main.props[opt] ?? '')?.[1];
        value = normalizeNic(value, previousMac);
      }
      storeOption(config, opt, value, running && NOT_HOTPLUGGABLE.test(opt));
    }
  });
}
