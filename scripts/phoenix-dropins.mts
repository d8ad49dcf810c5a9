#!/usr/bin/env node
// phoenix-dropins: install (or remove) launchers in a legacy bash tree so
// that the bash still calling `bin/<script>.sh` runs the port instead.
// Phoenix's own tool; it has no bash original.
//
//   phoenix-dropins --legacy-dir /usr/local/phoenix_hypervisor [--uninstall] [--dry-run] [script...]

import { runMain } from '../lib/core/main.mts';
import { defineArgs } from '../lib/core/args.mts';
import { installDropIns, portedScripts } from '../lib/core/bridge.mts';
import { UsageError } from '../lib/core/errors.mts';
import { info } from '../lib/core/log.mts';

const HELP = `Usage: phoenix-dropins --legacy-dir DIR [--uninstall] [--dry-run] [--list] [script...]

Puts a launcher under each upstream script name in DIR/bin that runs the
Phoenix port, keeping the bash original as <name>.legacy. Without script
names, every ported script is installed. --uninstall puts the originals back.
Scripts are named as under the bash tree's bin/, e.g. managers/lxc-manager.sh.
`;

const ARGS = defineArgs({
  name: 'phoenix-dropins',
  usage: HELP,
  dryRun: true,
  flags: { 'legacy-dir': { type: 'string', needs: 'a directory' }, uninstall: { type: 'boolean' }, list: { type: 'boolean' } },
  positionals: [{ name: 'scripts', variadic: true, optional: true }],
});

await runMain(ARGS, async (args, { options }) => {
  if (args.flags.list) {
    process.stdout.write(`${portedScripts().join('\n')}\n`);
    return 0;
  }
  const legacyDir = args.flags['legacy-dir'] ?? options.legacyDir;
  if (!legacyDir) throw new UsageError('no legacy tree given', { hint: 'pass --legacy-dir DIR or set PHOENIX_LEGACY_DIR' });
  const names = args.positional.scripts;
  const results = installDropIns(legacyDir, names.length ? names : undefined, args.flags.uninstall);
  for (const r of results) info(`${r.name}: ${r.outcome}`);
  return 0;
});
