#!/usr/bin/env node
// generate_traefik_config: Traefik's configuration for the mesh container from
// the manifests, under <base>/etc/traefik/:
//   dynamic_conf.yml  mesh routers and services from the guests' addresses and
//                     schemes, websecure routers for what the gateway passes
//                     through, the mesh-mtls client authentication, Traefik's
//                     own issued certificate;
//   traefik.yml       the static configuration, from traefik.yml.template with
//                     its placeholders filled (entrypoints, file provider, the
//                     Step-CA ACME resolver where enabled, added when the
//                     template has none), api.insecure forced off and the log
//                     level capped at INFO unless gateway.traefik_log_level
//                     says otherwise (each override logged as a warning).
// Deploying them into the Traefik CT is the job of its application script
// (phoenix_hypervisor_lxc_102.sh) and of sync all.

import path from 'node:path';
import { runMain, withHostLock } from '../lib/core/main.mts';
import { defineArgs } from '../lib/core/args.mts';
import { isDryRun } from '../lib/core/context.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config/load.mts';
import { DYNAMIC_RELATIVE, renderTraefikDynamic, traefikCt } from '../lib/gateway/traefik.mts';
import { STATIC_RELATIVE, renderTraefikStatic } from '../lib/features/lxc/traefik-static.mts';
import { caUrl } from '../lib/guest/root-ca.mts';
import { writeFileAtomic, type WriteOutcome } from '../lib/core/fs.mts';
import { debug, info, success, warn } from '../lib/core/log.mts';

const USAGE = `Usage: generate_traefik_config.sh [--dry-run]

Writes Traefik's configuration from the manifests:
  <base>/etc/traefik/dynamic_conf.yml   dynamic configuration (routers, services, TLS)
  <base>/etc/traefik/traefik.yml        static configuration, from
                                        <base>/etc/traefik/traefik.yml.template

  --dry-run   print what would change, change nothing
`;

const ARGS = defineArgs({ name: 'generate_traefik_config.sh', usage: USAGE, dryRun: true });

await runMain(ARGS, async (_args, context) => {
  const config = loadConfig(resolveConfigPaths());
  info('Generating the Traefik configuration...');
  const { text, model } = await renderTraefikDynamic(config);
  for (const route of model.routes) debug(`route ${route.host} -> ${route.url ?? 'api@internal'} (${route.source})`);
  for (const route of model.websecure) debug(`websecure route ${route.host} (${model.acme ? 'certificate from the Step-CA ACME resolver' : "Traefik's default certificate"})`);
  for (const note of model.notes) info(note);
  for (const reason of model.skipped) warn(`not routed: ${reason}`);
  if (!model.certificate) warn('the certificate manifest issues no server certificate for the Traefik CT: Traefik will serve its default certificate and nginx will refuse it');

  const traefikId = traefikCt(config).id;
  const featureContext = { config, options: context.options };
  const staticFile = await renderTraefikStatic(featureContext, traefikId, caUrl(featureContext, traefikId));
  const targets = [
    { relative: DYNAMIC_RELATIVE, text, what: `dynamic configuration (${model.routes.length} mesh routes, ${model.websecure.length} websecure routes)` },
    { relative: STATIC_RELATIVE, text: staticFile.text, what: `static configuration (from ${staticFile.source})` },
  ];
  const outcomes: WriteOutcome[] = await withHostLock(context, async () =>
    targets.map((target) => writeFileAtomic(path.join(context.options.baseDir, target.relative), target.text, { mode: 0o644 })),
  );
  targets.forEach((target, i) => {
    const file = path.join(context.options.baseDir, target.relative);
    if (outcomes[i] === 'unchanged') success(`Traefik ${target.what} unchanged at ${file}`);
    else success(`Traefik ${target.what} ${isDryRun() ? 'planned' : 'generated'} at ${file}`);
  });
  return 0;
});
