#!/usr/bin/env node
// generate_nginx_gateway_config: the Nginx gateway's nginx.conf, site and
// stream files under <base>/etc/nginx/ from the manifests, in the TLS
// topology of gateway.mode. Checked with `nginx -t` (where nginx is on PATH)
// before anything is replaced; a rejected configuration is never installed.
// Deploying the files into the gateway CT is the job of its application
// script (phoenix_hypervisor_lxc_101.sh) and of sync all.

import { runMain, withHostLock } from '../lib/core/main.mts';
import { defineArgs } from '../lib/core/args.mts';
import { isDryRun } from '../lib/core/context.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config/load.mts';
import { planGatewayFiles, writeGatewayFiles } from '../lib/gateway/nginx.mts';
import { info, success } from '../lib/core/log.mts';

const USAGE = `Usage: generate_nginx_gateway_config.sh [--dry-run]

Writes the Nginx gateway configuration from the manifests:
  <base>/etc/nginx/nginx.conf
  <base>/etc/nginx/sites-available/gateway
  <base>/etc/nginx/stream.d/stream-gateway.conf
The TLS topology follows gateway.mode in the hypervisor config (hybrid,
passthrough or mtls). When nginx is installed, the files are checked with
'nginx -t' first and nothing is replaced if nginx rejects them.

  --dry-run   print what would change, change nothing
`;

const ARGS = defineArgs({ name: 'generate_nginx_gateway_config.sh', usage: USAGE, dryRun: true });

await runMain(ARGS, async (_args, context) => {
  const config = loadConfig(resolveConfigPaths());
  const plan = planGatewayFiles(config, context.options.baseDir, context.options.hostRoot);
  info(`Generating the Nginx gateway configuration (mode ${plan.model.mode}, Traefik at ${plan.model.traefikAddress})...`);
  if (plan.pending.length === 0) {
    success(`Nginx gateway configuration unchanged (${plan.files.map((file) => file.relative).join(', ')})`);
    return 0;
  }
  await withHostLock(context, () => writeGatewayFiles(plan));
  success(`Nginx gateway configuration ${isDryRun() ? 'planned' : 'written'}: ${plan.pending.map((file) => file.relative).join(', ')}`);
  return 0;
});
