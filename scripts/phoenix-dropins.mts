#!/usr/bin/env node
// phoenix-dropins: install (or remove) launchers in a legacy bash tree so
// that the bash still calling `bin/<script>.sh` runs the port instead.
// Phoenix's own tool; it has no bash original.
//
//   phoenix-dropins --legacy-dir /usr/local/phoenix_hypervisor [--uninstall] [--dry-run] [script...]

import minimist from 'minimist';
import { runMain } from '../lib/main.mts';
import { installDropIns, portedScripts } from '../lib/bridge.mts';
import { UsageError } from '../lib/errors.mts';
import { configureRunner } from '../lib/runner.mts';
import { info } from '../lib/log.mts';

const HELP = `Usage: phoenix-dropins --legacy-dir DIR [--uninstall] [--dry-run] [--list] [script...]

Puts a launcher under each upstream script name in DIR/bin that runs the
Phoenix port, keeping the bash original as <name>.legacy. Without script
names, every ported script is installed. --uninstall puts the originals back.
Scripts are named as under the bash tree's bin/, e.g. managers/lxc-manager.sh.
`;

await runMain('phoenix-dropins', async ({ argv, options }) => {
  const args = minimist(argv, { boolean: ['uninstall', 'dry-run', 'help', 'list'], string: ['legacy-dir'] });
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.list) {
    process.stdout.write(`${portedScripts().join('\n')}\n`);
    return 0;
  }
  const legacyDir = (args['legacy-dir'] as string | undefined) || options.legacyDir;
  if (!legacyDir) throw new UsageError('no legacy tree given', { hint: 'pass --legacy-dir DIR or set PHOENIX_LEGACY_DIR' });
  if (args['dry-run']) configureRunner({ dryRun: true });
  const names = args._.map(String);
  const results = installDropIns(legacyDir, names.length ? names : undefined, Boolean(args.uninstall));
  for (const r of results) info(`${r.name}: ${r.outcome}`);
  return 0;
});
