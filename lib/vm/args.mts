// vm-manager's command line, declared: `vm-manager.sh <action> <vmid>`, as
// the bash took it, plus `--config FILE` (the VM manifest; the bash defined
// it but dropped it), `--dry-run` and `--help`. Words after the VMID were
// ignored by the bash; they still are, with a warning, except for `status`,
// which takes several VMIDs.

import { defineArgs, parseArgs, type CommandSpec, type ParsedArgs } from '../core/args.mts';

export const VM_ACTIONS = ['create', 'converge', 'start', 'stop', 'restart', 'delete', 'sync', 'status'] as const;
export type VmAction = (typeof VM_ACTIONS)[number];

export const USAGE = `Usage: vm-manager.sh <action> <vmid> [--config FILE] [--dry-run]
  create <vmid>      create the VM (clone or cloud image), configure it, run its features; a template is finished with qm template
  converge <vmid>    the same; what is done already is not done again
  start|stop|restart <vmid>
                     lifecycle (stop asks the guest to shut down, then stops it); templates are never started
  delete <vmid>      stop and destroy (with --purge); host data directories are kept
  sync <vmid>        refresh the Docker TLS material of a VM with the docker feature
  status <vmid...>   state table on stdout
  --config FILE      the VM manifest (default: VM_CONFIG_FILE, core_paths, <base>/etc/phoenix_vm_configs.json)
`;

const validVmid = (id: string) => (/^[1-9][0-9]*$/.test(id) ? undefined : `Invalid VMID '${id}': a positive number is expected.`);
const needsVmid = (action: string | undefined) => `'${action}' needs a VMID`;
const oneVmid: CommandSpec = { positionals: [{ name: 'vmid', missing: needsVmid, check: validVmid }], extra: 'ignore' };

export const VM_MANAGER_ARGS = defineArgs({
  name: 'vm-manager.sh',
  usage: USAGE,
  dryRun: true,
  flags: { config: { type: 'string', needs: 'a file' } },
  commands: {
    ...(Object.fromEntries(VM_ACTIONS.map((action) => [action, oneVmid])) as Record<Exclude<VmAction, 'status'>, CommandSpec>),
    status: { positionals: [{ name: 'vmids', variadic: true, missing: needsVmid, check: validVmid }] },
  },
  invalidCommand: (action) => `Invalid action '${action ?? ''}' for vm-manager.`,
});

export interface VmManagerArgs {
  action: VmAction | undefined;
  vmids: string[];
  configFile: string | undefined;
  dryRun: boolean;
  help: boolean;
  /** Words the bash ignored too. */
  ignored: string[];
}

/** The declared command line as vm-manager works with it. */
export function vmManagerArgs(args: ParsedArgs<typeof VM_MANAGER_ARGS>): VmManagerArgs {
  return { action: args.command, vmids: args.operands, configFile: args.flags.config, dryRun: args.dryRun, help: false, ignored: args.ignored };
}

export function parseVmManagerArgs(argv: readonly string[]): VmManagerArgs {
  const parsed = parseArgs(VM_MANAGER_ARGS, argv);
  if (parsed.help) return { action: undefined, vmids: [], configFile: undefined, dryRun: false, help: true, ignored: [] };
  return vmManagerArgs(parsed);
}
