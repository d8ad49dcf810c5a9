#!/usr/bin/env node
// hypervisor_feature_setup_dns_server: the host's split-horizon DNS
// (dnsmasq) from the manifests. Run by hypervisor-manager (setup step 9) and
// portainer-manager (sync); the optional argument is the hypervisor config.
// What it does: lib/hypervisor/dns.mts (the records) and lib/hypervisor/dnsmasq.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { setupFeatureContext, setupScriptArgs } from '../../lib/hypervisor/script.mts';
import { setupDnsServer } from '../../lib/hypervisor/dnsmasq.mts';

const USAGE = `Usage: hypervisor_feature_setup_dns_server.sh [HYPERVISOR_CONFIG_FILE] [--dry-run]

Configures dnsmasq on the host from the manifests (dns_server, domain_name,
the guests' names and addresses): ca.<domain> to the CA, the mesh name to
Traefik, public names to the nginx gateway, each guest's name to itself.
Installs dnsmasq when missing, checks the files with 'dnsmasq --test' before
installing them, restarts dnsmasq only when they changed, and points the
host's resolv.conf at it. Does nothing when dns_server.enabled is not true.

  --dry-run   print what would change, change nothing
`;

await runMain(setupScriptArgs('hypervisor_feature_setup_dns_server.sh', USAGE), async (args, context) => {
  const feature = setupFeatureContext(args.positional.hypervisorConfig, context.options);
  await withHostLock(context, () => setupDnsServer(feature.config, feature.options));
  return 0;
});
