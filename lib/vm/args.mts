// vm-manager's command line: `vm-manager.sh <action> <vmid>`, as the bash
// took it, plus `--config FILE` (the VM manifest; the bash defined it but
// dropped it, finding 5), `--dry-run` and `--help`. Words after the VMID were
// ignored by the bash; they still are, with a warning, except for `status`,
// which takes several VMIDs.

import { UsageError } from '../errors.mts';

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

export interface VmManagerArgs {
  action: VmAction | undefined;
  vmids: string[];
  configFile: string | undefined;
  dryRun: boolean;
  help: boolean;
  /** Words the bash ignored too. */
  ignored: string[];
}

export function parseVmManagerArgs(argv: readonly string[]): VmManagerArgs {
  const out: VmManagerArgs = { action: undefined, vmids: [], configFile: undefined, dryRun: false, help: false, ignored: [] };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') out.help = true;
    else if (arg === '--dry-run') out.dryRun = true;
    else if (arg === '--config' || arg.startsWith('--config=')) {
      const value = arg === '--config' ? argv[++i] : arg.slice('--config='.length);
      if (!value) throw new UsageError('--config needs a file', { hint: USAGE.split('\n')[0] });
      out.configFile = value;
    } else if (arg.startsWith('--')) throw new UsageError(`unknown option '${arg}'`, { hint: USAGE.split('\n')[0] });
    else words.push(arg);
  }
  if (out.help) return out;
  const [action, ...rest] = words;
  if (action === undefined || !(VM_ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`Invalid action '${action ?? ''}' for vm-manager.`, { hint: USAGE.split('\n')[0] });
  }
  out.action = action as VmAction;
  if (rest.length === 0) throw new UsageError(`'${action}' needs a VMID`, { hint: USAGE.split('\n')[0] });
  out.vmids = action === 'status' ? rest : rest.slice(0, 1);
  if (action !== 'status') out.ignored = rest.slice(1);
  for (const id of out.vmids) if (!/^[1-9][0-9]*$/.test(id)) throw new UsageError(`Invalid VMID '${id}': a positive number is expected.`);
  return out;
}
