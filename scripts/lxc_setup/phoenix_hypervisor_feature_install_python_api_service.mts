#!/usr/bin/env node
// Port of bin/lxc_setup/phoenix_hypervisor_feature_install_python_api_service.sh, run on the host as
// `phoenix_hypervisor_feature_install_python_api_service.sh <CTID> [bootstrap_ca_url]` (lxc-manager passes both).
// What it does to the container: lib/features/lxc/python-api-service.mts.

import { runLxcFeatureScript } from '../../lib/features/lxc/script.mts';
import { install } from '../../lib/features/lxc/python-api-service.mts';

await runLxcFeatureScript('phoenix_hypervisor_feature_install_python_api_service.sh', 'python_api_service', install);
