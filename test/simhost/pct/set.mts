// `pct set`: options changed, deleted or reverted, under the config lock;
// what a running container cannot take live waits in [pve:pending].

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { usage } from '../args.mts';
import type { Ctx } from '../cli.mts';
import { mutateGuest, parameterError, revertPending, setRequest, storeOption } from '../guest-common/config-edits.mts';
import { checkLock, checkProtection, isRunning, nextUnused } from '../guests.mts';
import { parsePropertyString, printPropertyString } from '../pveconf.mts';
import { freeVolume } from '../storage.mts';
import { die } from '../state.mts';
import { allocateMount, normalizeNet } from './create.mts';
import { ctOption, NOT_HOTPLUGGABLE, specs } from './schema.mts';

export function set(ctx: Ctx, vmid: string, opts: Record<string, string>, order: string[]): void {
  const { changes, deletes, reverts } = setRequest(opts, order, ['delete', 'revert', 'digest']);
  const usageText = usage(specs.set!);
  const paramError = (name: string, reason: string): never => parameterError(usageText, name, reason);
  mutateGuest(ctx, 'lxc', vmid, false, (rt, config) => {
    checkLock('lxc', config);
    if (opts.digest !== undefined && opts.digest !== configDigest(ctx, vmid)) {
      die('detected modified configuration - file changed by other user? Try again.');
    }
    for (const opt of reverts) if (!ctOption(opt)) paramError('revert', `unknown option '${opt}'`);
    for (const opt of deletes) {
      if (!ctOption(opt)) paramError('delete', `unknown option '${opt}'`);
      if (changes.includes(opt)) paramError('delete', `you can't use '-${opt}' and -delete ${opt}' at the same time`);
    }
    const running = isRunning(rt, vmid, ctx.root, 'lxc');
    revertPending(config, reverts);

    for (const opt of deletes) {
      const isSet = opt === 'description' ? config.main.description !== '' : config.main.props[opt] !== undefined || config.pending?.props[opt] !== undefined;
      if (!isSet) {
        ctx.err(`cannot delete '${opt}' - not set in current configuration!\n`);
        continue;
      }
      if (opt === 'memory' || opt === 'rootfs' || opt === 'ostype') die(`unable to delete required option '${opt}'`);
      if (opt === 'unprivileged') die(`unable to delete read-only option: '${opt}'`);
      if (/^(mp|unused)\d+$/.test(opt)) checkProtection(config, `can't remove CT ${vmid} drive '${opt}'`);
      if (opt === 'description') {
        config.main.description = '';
        continue;
      }
      const old = config.main.props[opt];
      delete config.main.props[opt];
      if (old !== undefined && /^mp\d+$/.test(opt)) {
        const volid = parsePropertyString(old, 'volume').volume!;
        if (!volid.startsWith('/')) config.main.props[nextUnused(config.main)] = volid;
      }
      if (old !== undefined && /^unused\d+$/.test(opt)) freeVolume(rt, old);
    }

    for (const opt of [...changes].sort()) {
      let value = opts[opt]!;
      if (opt === 'unprivileged') die(`unable to modify read-only option: '${opt}'`);
      if (opt === 'description') {
        // Kept as the '#' comment block on top of the file, newlines and all.
        config.main.description = value;
        continue;
      }
      if (opt === 'rootfs' || /^mp\d+$/.test(opt)) {
        checkProtection(config, `can't update CT ${vmid} drive '${opt}'`);
        const old = config.main.props[opt];
        value = allocateMount(rt, vmid, value, () => usageText);
        if (old !== undefined) {
          const oldVol = parsePropertyString(old, 'volume').volume!;
          const newVol = parsePropertyString(value, 'volume').volume!;
          if (oldVol !== newVol && !oldVol.startsWith('/')) config.main.props[nextUnused(config.main)] = oldVol;
        }
      }
      if (/^net\d+$/.test(opt)) {
        const previous = config.main.props[opt] ? parsePropertyString(config.main.props[opt]!) : {};
        const next = parsePropertyString(value);
        if (next.hwaddr === undefined && previous.hwaddr !== undefined) next.hwaddr = previous.hwaddr;
        value = normalizeNet(printPropertyString(next));
      }
      storeOption(config, opt, value, running && NOT_HOTPLUGGABLE.test(opt));
    }
  });
}

function configDigest(ctx: Ctx, vmid: string): string {
  // PVE's digest is the SHA-1 of the config file.
  return createHash('sha1').update(fs.readFileSync(path.join(ctx.root, 'pve', 'lxc', `${vmid}.conf`))).digest('hex');
}
