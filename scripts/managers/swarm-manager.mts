#!/usr/bin/env node
// swarm-manager.sh <action> [args]: Docker Swarm on the VMs of
// phoenix_vm_configs.json (init, join, deploy, rm, status). Its command line
// is declared in lib/swarm/args.mts; what each action does is
// lib/swarm/manager.mts.

import { runMain } from '../../lib/core/main.mts';
import { SWARM_ARGS, swarmArgs } from '../../lib/swarm/args.mts';
import { runSwarmManager } from '../../lib/swarm/manager.mts';

await runMain(SWARM_ARGS, (parsed, context) => runSwarmManager(swarmArgs(parsed), context));
