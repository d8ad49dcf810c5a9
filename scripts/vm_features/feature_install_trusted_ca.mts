#!/usr/bin/env node
// feature_install_trusted_ca <VMID>: the Phoenix root CA in the VM's trust
// store.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/features/vm/trusted-ca.mts. Exit 0 when done (or already so), 1 for a
// usage, configuration or precondition error, else the failing guest command's
// code.

import { runVmFeatureScript } from '../../lib/features/vm/script.mts';
import { install } from '../../lib/features/vm/trusted-ca.mts';

await runVmFeatureScript('feature_install_trusted_ca.sh', install);
