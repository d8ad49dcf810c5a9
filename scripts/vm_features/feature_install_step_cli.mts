#!/usr/bin/env node
// feature_install_step_cli <VMID>: Smallstep's step CLI from its apt
// repository.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/features/vm/step-cli.mts. Exit 0 when done (or already so), 1 for a
// usage, configuration or precondition error, else the failing guest command's
// code.

import { runVmFeatureScript } from '../../lib/features/vm/script.mts';
import { install } from '../../lib/features/vm/step-cli.mts';

await runVmFeatureScript('feature_install_step_cli.sh', install);
