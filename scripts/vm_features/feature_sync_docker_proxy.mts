#!/usr/bin/env node
// feature_sync_docker_proxy <VMID>: bring the VM's Docker daemon to its
// mutual-TLS configuration (what the bash meant; it ran VM code on the host).
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/features/vm/sync-docker-proxy.mts. Exit 0 when done (or already so), 1
// for a usage, configuration or precondition error, else the failing guest
// command's code.

import { runVmFeatureScript } from '../../lib/features/vm/script.mts';
import { install } from '../../lib/features/vm/sync-docker-proxy.mts';

await runVmFeatureScript('feature_sync_docker_proxy.sh', install);
