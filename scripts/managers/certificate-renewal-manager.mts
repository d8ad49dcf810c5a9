#!/usr/bin/env node
// Port of bin/managers/certificate-renewal-manager.sh: issue and renew every
// certificate of etc/certificate-manifest.json through Step-CA, copy them
// into their guests, run their post-renewal commands and reload nginx and
// Traefik. Called by lxc-manager create, vm-manager create (--generate-only),
// portainer-manager sync all (--force) and the phoenix-cert-renewal timer.
// How a run goes: lib/certificates/renewal.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { defineArgs } from '../../lib/core/args.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { info, warn } from '../../lib/core/log.mts';
import { renewCertificates } from '../../lib/certificates/renewal.mts';
import { failures, logSummary } from '../../lib/certificates/summary.mts';

const USAGE = `Usage: certificate-renewal-manager.sh [--force] [--generate-only] [--dry-run]

Issues and renews the certificates of certificate-manifest.json through
Step-CA, copies them into their guests and runs their post-renewal commands.

  --force          renew every certificate, valid or not
  --generate-only  issue only: copy nothing into guests, run no post-renewal
                   command and no reload (a later run delivers them)
  --dry-run        print what would be done, change nothing
  -h, --help       this text

A certificate is renewed when it is missing, unreadable, expiring within its
renew_before window (default 12h), names other DNS or IP SANs than the
manifest, lacks its chain, or does not chain to the current root CA.
Exits 1 when any entry failed; the others are still processed.
`;

const ARGS = defineArgs({
  name: 'certificate-renewal-manager.sh',
  usage: USAGE,
  dryRun: true,
  flags: { force: { type: 'boolean' }, 'generate-only': { type: 'boolean' } },
  // The bash ignored arguments it did not know; callers may still pass some.
  unknownFlags: 'ignore',
  extra: 'ignore',
});

await runMain(ARGS, async (args, context) => {
  for (const word of args.ignored) warn(`ignoring unknown argument '${word}'`);
  const flags = { force: args.flags.force, generateOnly: args.flags['generate-only'] };
  if (flags.force) info('--force: every certificate is renewed');
  if (flags.generateOnly) info('--generate-only: certificates are issued but not delivered');

  info('--- Starting Certificate Renewal Manager ---');
  const config = loadConfig(resolveConfigPaths());
  const report = await withHostLock(context, () => renewCertificates(config, context.options, flags));
  if (report.skipped) {
    info('--- Certificate Renewal Manager Finished (Skipped) ---');
    return 0;
  }
  logSummary(report);
  const failed = failures(report);
  info(`--- Certificate Renewal Manager Finished${failed.length > 0 ? ` with ${failed.length} failure(s)` : ''} ---`);
  return failed.length > 0 ? 1 : 0;
});
