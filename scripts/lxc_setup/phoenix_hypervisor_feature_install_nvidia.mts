#!/usr/bin/env node
// Port of bin/lxc_setup/phoenix_hypervisor_feature_install_nvidia.sh, run on the host as
// `phoenix_hypervisor_feature_install_nvidia.sh <CTID> [bootstrap_ca_url]` (lxc-manager passes both).
// What it does to the container: lib/features/lxc/nvidia.mts.

import { runLxcFeatureScript } from '../../lib/features/lxc/script.mts';
import { install } from '../../lib/features/lxc/nvidia.mts';

await runLxcFeatureScript('phoenix_hypervisor_feature_install_nvidia.sh', 'nvidia', install);
