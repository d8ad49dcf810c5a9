#!/usr/bin/env node
// Port of bin/lxc_setup/phoenix_hypervisor_feature_sync_traefik_certs.sh, run on the host as
// `phoenix_hypervisor_feature_sync_traefik_certs.sh <CTID> [bootstrap_ca_url]` (lxc-manager passes both).
// What it does to the container: lib/features/lxc/sync-traefik-certs.mts.

import { runLxcFeatureScript } from '../../lib/features/lxc/script.mts';
import { install } from '../../lib/features/lxc/sync-traefik-certs.mts';

await runLxcFeatureScript('phoenix_hypervisor_feature_sync_traefik_certs.sh', 'sync_traefik_certs', install);
