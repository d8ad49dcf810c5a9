#!/usr/bin/env node
// feature_install_docker <VMID>: Docker Engine, the user in the docker group,
// mutual-TLS API on :2376 when the VM has a daemon certificate.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/features/vm/docker.mts. Exit 0 when done (or already so), 1 for a usage,
// configuration or precondition error, else the failing guest command's code.

import { runVmFeatureScript } from '../../lib/features/vm/script.mts';
import { install } from '../../lib/features/vm/docker.mts';

await runVmFeatureScript('feature_install_docker.sh', install);
