#!/usr/bin/env node
// feature_install_docker_proxy <VMID>: root's Docker context 'phoenix' over
// the daemon's mutual-TLS endpoint.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/features/vm/docker-proxy.mts. Exit 0 when done (or already so), 1 for a
// usage, configuration or precondition error, else the failing guest command's
// code.

import { runVmFeatureScript } from '../../lib/features/vm/script.mts';
import { install } from '../../lib/features/vm/docker-proxy.mts';

await runVmFeatureScript('feature_install_docker_proxy.sh', install);
