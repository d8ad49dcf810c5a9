#!/usr/bin/env node
// feature_install_base_setup <VMID>: IPv6 and ufw off in the VM.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/features/vm/base-setup.mts. Exit 0 when done (or already so), 1 for a
// usage, configuration or precondition error, else the failing guest command's
// code.

import { runVmFeatureScript } from '../../lib/features/vm/script.mts';
import { install } from '../../lib/features/vm/base-setup.mts';

await runVmFeatureScript('feature_install_base_setup.sh', install);
