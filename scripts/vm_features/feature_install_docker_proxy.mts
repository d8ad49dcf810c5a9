#!/usr/bin/env node
// feature_install_docker_proxy <VMID>: root's Docker context 'phoenix' over
// the daemon's mutual-TLS endpoint.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/vm-features/docker-proxy.mts. Exit 0 when done (or already so), 1 for a
// usage, configuration or precondition error, else the failing guest command's
// code.

import { runVmFeatureScript } from '../../lib/vm-features/script.mts';
import { install } from '../../lib/vm-features/docker-proxy.mts';

await runVmFeatureScript('feature_install_docker_proxy.sh', install);
