#!/usr/bin/env node
// feature_template <VMID>: the scaffold: a minimal, working example of a VM
// feature (see lib/vm-features/template.mts).
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/vm-features/template.mts. Exit 0 when done (or already so), 1 for a
// usage, configuration or precondition error, else the failing guest command's
// code.

import { runVmFeatureScript } from '../../lib/vm-features/script.mts';
import { install } from '../../lib/vm-features/template.mts';

await runVmFeatureScript('feature_template.sh', install);
