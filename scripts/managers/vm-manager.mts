#!/usr/bin/env node
// vm-manager.sh <action> <vmid>: the VM lifecycle. Its command line is
// declared in lib/vm/args.mts; lib/vm/manager.mts loads and checks the
// manifests once, takes the host lock (or runs under the caller's) and does
// the action.

import { runMain } from '../../lib/core/main.mts';
import { VM_MANAGER_ARGS } from '../../lib/vm/args.mts';

// The domain modules load once the arguments are known to be good, so
// `--help` and a usage error read none of them.
await runMain(VM_MANAGER_ARGS, async (args, context) => (await import('../../lib/vm/manager.mts')).runVmManager(args, context));
