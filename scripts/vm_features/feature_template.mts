#!/usr/bin/env node
// feature_template <VMID>: the scaffold: a minimal, working example of a VM
// feature (see lib/features/vm/template.mts).
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/features/vm/template.mts. Exit 0 when done (or already so), 1 for a
// usage, configuration or precondition error, else the failing guest command's
// code.

import { runVmFeatureScript } from '../../lib/features/vm/script.mts';
import { install } from '../../lib/features/vm/template.mts';

await runVmFeatureScript('feature_template.sh', install);
