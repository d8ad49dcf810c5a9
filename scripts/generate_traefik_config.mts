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
// What it does: lib/gateway/traefik-files.mts. Deploying them into the
// Traefik CT is the job of its application script
// (phoenix_hypervisor_lxc_102.sh) and of sync all.

import { runMain } from '../lib/core/main.mts';
import { defineArgs } from '../lib/core/args.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config/load.mts';
import { generateTraefikFiles } from '../lib/gateway/traefik-files.mts';

const USAGE = `Usage: generate_traefik_config.sh [--dry-run]

Writes Traefik's configuration from the manifests:
  <base>/etc/traefik/dynamic_conf.yml   dynamic configuration (routers, services, TLS)
  <base>/etc/traefik/traefik.yml        static configuration, from
                                        <base>/etc/traefik/traefik.yml.template

  --dry-run   print what would change, change nothing
`;

const ARGS = defineArgs({ name: 'generate_traefik_config.sh', usage: USAGE, dryRun: true });

await runMain(ARGS, (_args, context) => generateTraefikFiles(loadConfig(resolveConfigPaths()), context));
