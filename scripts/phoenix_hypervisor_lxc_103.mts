#!/usr/bin/env node
// Port of bin/phoenix_hypervisor_lxc_103.sh, the Step-CA container's
// application script. lxc-manager runs it on the host as
// `phoenix_hypervisor_lxc_103.sh <CTID>`; it works on the container through
// pct (the bash ran inside it, logging into the shared CA directory).
// What it does: lib/pki/step-ca.mts (settings from the manifests:
// lib/pki/settings.mts; the bash CA's shared directory: lib/pki/shared-dir.mts).
// Exit 0 when the CA is initialised,
// healthy and its root copied to the host; 1 (or the failing command's
// status) otherwise.

import { runMain, withHostLock } from '../lib/core/main.mts';
import { defineArgs } from '../lib/core/args.mts';
import { isDryRun } from '../lib/core/context.mts';
import { loadConfig, resolveConfigPaths } from '../lib/config/load.mts';
import { UsageError } from '../lib/core/errors.mts';
import { success } from '../lib/core/log.mts';
import { ensureStepCa, stepCaSettings } from '../lib/pki/step-ca.mts';

const NAME = 'phoenix_hypervisor_lxc_103.sh';
const USAGE = `Usage: ${NAME} [--dry-run] [CTID]

Initialises the Step-CA in its container (step_ca.ctid of the hypervisor
config, default 103) if it is not yet, starts step-ca, waits for its health
check, adds the ACME provisioner 'acme' once, copies the root certificate to
step_ca.root_ca_file on the host and writes the ready marker. When the
container mounts a host directory at /etc/step-ca/ssl (the bash CA's shared
directory), the public files bash scripts read there are written too:
phoenix_root_ca.crt, phoenix_ca.crt, root_ca.fingerprint, certs/root_ca.crt
and ca.ready (never a password). A second run on a healthy CA changes nothing.

  CTID        the container lxc-manager is building; must be step_ca.ctid
  --dry-run   print what would change, change nothing
  -h, --help  this text
`;

const ARGS = defineArgs({
  name: NAME,
  usage: USAGE,
  dryRun: true,
  positionals: [{ name: 'ctid', optional: true }],
  tooMany: (operands) => `expected at most one CTID, got ${operands.join(' ')}`,
});

await runMain(ARGS, async (args, context) => {
  const config = loadConfig(resolveConfigPaths());
  const settings = stepCaSettings(config, context.options);
  const ctid = args.positional.ctid ?? settings.ctid;
  if (ctid !== settings.ctid) {
    throw new UsageError(`CT ${ctid} is not the CA container: step_ca.ctid is ${settings.ctid}`, {
      hint: `this script belongs to the container named by step_ca.ctid in ${config.paths.hypervisor}`,
    });
  }

  const result = await withHostLock(context, () => ensureStepCa({ config, options: context.options }, settings));
  const about = result.fingerprint ? ` (root fingerprint ${result.fingerprint})` : '';
  if (result.changes.length === 0) success(`Step-CA in CT ${ctid} is initialised and healthy; nothing to change${about}`);
  else if (isDryRun()) success(`DRY-RUN: Step-CA in CT ${ctid}: ${result.changes.length} change(s) planned: ${result.changes.join('; ')}`);
  else success(`Step-CA in CT ${ctid} is ready${about}: ${result.changes.join('; ')}`);
  return 0;
});
