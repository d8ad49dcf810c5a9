#!/usr/bin/env node
// feature_sync_docker_certs <VMID>: push the Docker daemon's certificate files
// (from the host paths of the certificate manifest) into the VM; restart a
// running docker if they changed.
// Runs on the host and acts on the VM through its guest agent; the work is
// lib/features/vm/sync-docker-certs.mts. Exit 0 when done (or already so), 1
// for a usage, configuration or precondition error, else the failing guest
// command's code.

import { runVmFeatureScript } from '../../lib/features/vm/script.mts';
import { install } from '../../lib/features/vm/sync-docker-certs.mts';

await runVmFeatureScript('feature_sync_docker_certs.sh', install);
