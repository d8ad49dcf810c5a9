#!/usr/bin/env node
// generate_traefik_config: Traefik's dynamic configuration
// (<base>/etc/traefik/dynamic_conf.yml) from the manifests: mesh routers and
// services from the guests' addresses and schemes, the mesh-mtls client
// authentication, and Traefik's own issued certificate. Deploying it into the
// Traefik CT stays with the caller (sync all).

import path from 'node:path';
import { runMain, takeStandardFlags, withHostLock } from '../lib/main.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config.mts';
import { DYNAMIC_RELATIVE, renderTraefikDynamic } from '../lib/gateway/traefik.mts';
import { writeFileAtomic } from '../lib/fs.mts';
import { debug, info, success, warn } from '../lib/log.mts';

const USAGE = `Usage: generate_traefik_config.sh [--dry-run]

Writes Traefik's dynamic configuration from the manifests to
<base>/etc/traefik/dynamic_conf.yml.

  --dry-run   print what would change, change nothing
`;

await runMain('generate_traefik_config.sh', async (context) => {
  if (!takeStandardFlags(context, USAGE)) return 0;

  const config = loadConfig(resolveConfigPaths());
  info('Generating the Traefik dynamic configuration...');
  const { text, model } = await renderTraefikDynamic(config);
  for (const route of model.routes) debug(`route ${route.host} -> ${route.url ?? 'api@internal'} (${route.source})`);
  for (const reason of model.skipped) warn(`not routed: ${reason}`);
  if (!model.certificate) warn('the certificate manifest issues no server certificate for the Traefik CT: Traefik will serve its default certificate and nginx will refuse it');
  const target = path.join(context.options.baseDir, DYNAMIC_RELATIVE);
  const outcome = await withHostLock(context, async () => writeFileAtomic(target, text, { mode: 0o644 }));
  if (outcome === 'unchanged') success(`Traefik dynamic configuration unchanged at ${target} (${model.routes.length} routes)`);
  else success(`Traefik dynamic configuration ${context.options.dryRun ? 'planned' : 'generated'} at ${target} (${model.routes.length} routes)`);
  return 0;
});
