#!/usr/bin/env node
// vm-manager.sh <action> <vmid>: the VM lifecycle. Its command line is
// declared in lib/vm/args.mts; this loads and checks the manifests once,
// takes the host lock (or runs under the caller's) and hands the action to
// lib/vm/lifecycle.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { isDryRun } from '../../lib/core/context.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { PhoenixError } from '../../lib/core/errors.mts';
import { info, warn } from '../../lib/core/log.mts';
import { VM_MANAGER_ARGS, vmManagerArgs } from '../../lib/vm/args.mts';
import { findVm } from '../../lib/vm/spec.mts';
import { createVm, deleteVm, newVmSession, restartVm, startVm, statusTable, stopVm, syncVm } from '../../lib/vm/lifecycle.mts';

await runMain(VM_MANAGER_ARGS, async (parsed, context) => {
  const args = vmManagerArgs(parsed);
  if (args.ignored.length > 0) warn(`ignoring extra arguments: ${args.ignored.join(' ')}`);
  const { options } = context;
  if (isDryRun()) info('--- DRY RUN MODE: nothing will be changed ---');

  // Every manifest problem stops here, before the first command.
  const config = loadConfig(resolveConfigPaths(args.configFile ? { vm: args.configFile } : {}));
  void config.hypervisor;
  config.validateReferences();
  for (const id of args.vmids) {
    if (!findVm(config.vm, id) && args.action !== 'status') throw new PhoenixError(`VM ${id} not found in configuration (${config.paths.vm}).`);
  }

  const session = newVmSession({ script: context.name, options, config, lockToken: undefined, siblings: false });
  const vmid = args.vmids[0] as string;
  if (args.action === 'status') {
    process.stdout.write(await statusTable(session, args.vmids));
    return 0;
  }

  await withHostLock(context, async (lock) => {
    session.lockToken = lock?.token;
    session.siblings = lock !== undefined && !lock.owned;
    switch (args.action) {
      case 'create':
      case 'converge':
        await createVm(session, vmid);
        break;
      case 'start':
        await startVm(session, vmid);
        break;
      case 'stop':
        await stopVm(session, vmid);
        break;
      case 'restart':
        await restartVm(session, vmid);
        break;
      case 'delete':
        await deleteVm(session, vmid);
        break;
      case 'sync':
        await syncVm(session, vmid);
        break;
    }
  });
  return 0;
});
