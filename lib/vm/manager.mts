// vm-manager.sh <action> <vmid>, after its command line is read
// (lib/vm/args.mts): the run every guest manager makes
// (lib/guest/manager.mts), with the VM's actions. The create sequence is
// create.mts, the other verbs lifecycle.mts.

import type { ScriptContext } from '../core/main.mts';
import type { ParsedArgs } from '../core/args.mts';
import { warn } from '../core/log.mts';
import { runGuestManager } from '../guest/manager.mts';
import { VM_MANAGER_ARGS, vmManagerArgs } from './args.mts';
import { findVm } from './spec.mts';
import { newVmSession } from './session.mts';
import { createVm } from './create.mts';
import { deleteVm, restartVm, startVm, statusTable, stopVm, syncVm } from './lifecycle.mts';

export function runVmManager(parsed: ParsedArgs<typeof VM_MANAGER_ARGS>, context: ScriptContext): Promise<number> {
  const args = vmManagerArgs(parsed);
  if (args.ignored.length > 0) warn(`ignoring extra arguments: ${args.ignored.join(' ')}`);
  return runGuestManager(context, {
    verb: parsed.command,
    ids: args.vmids,
    paths: args.configFile ? { vm: args.configFile } : {},
    // `status` shows any VMID, known or not.
    unknown: (config, vmid, verb) => (verb === 'status' || findVm(config.vm, vmid) ? undefined : `VM ${vmid} not found in configuration (${config.paths.vm}).`),
    newSession: newVmSession,
    status: statusTable,
    verbs: {
      create: (session, vmid) => createVm(session, vmid),
      converge: (session, vmid) => createVm(session, vmid),
      start: startVm,
      stop: stopVm,
      restart: restartVm,
      delete: deleteVm,
      sync: syncVm,
    },
    failedCommandIsFatal: false,
  });
}
