#!/usr/bin/env node
// vm-manager.sh <action> <vmid>: the VM lifecycle. Its command line is
// declared in lib/vm/args.mts; lib/vm/manager.mts loads and checks the
// manifests once, takes the host lock (or runs under the caller's) and does
// the action.

import { runMain } from '../../lib/core/main.mts';
import { VM_MANAGER_ARGS } from '../../lib/vm/args.mts';
import { runVmManager } from '../../lib/vm/manager.mts';

await runMain(VM_MANAGER_ARGS, (args, context) => runVmManager(args, context));
