#!/usr/bin/env node
// Port of bin/lxc_setup/phoenix_hypervisor_feature_install_step_cli.sh, run on the host as
// `phoenix_hypervisor_feature_install_step_cli.sh <CTID> [bootstrap_ca_url]` (lxc-manager passes both).
// What it does to the container: lib/features/lxc/step-cli.mts.

import { runLxcFeatureScript } from '../../lib/features/lxc/script.mts';
import { install } from '../../lib/features/lxc/step-cli.mts';

await runLxcFeatureScript('phoenix_hypervisor_feature_install_step_cli.sh', 'step_cli', install);
