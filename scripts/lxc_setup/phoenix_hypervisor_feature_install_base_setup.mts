#!/usr/bin/env node
// Port of bin/lxc_setup/phoenix_hypervisor_feature_install_base_setup.sh, run on the host as
// `phoenix_hypervisor_feature_install_base_setup.sh <CTID> [bootstrap_ca_url]` (lxc-manager passes both).
// What it does to the container: lib/features/lxc/base-setup.mts.

import { runLxcFeatureScript } from '../../lib/features/lxc/script.mts';
import { install } from '../../lib/features/lxc/base-setup.mts';

await runLxcFeatureScript('phoenix_hypervisor_feature_install_base_setup.sh', 'base_setup', install);
