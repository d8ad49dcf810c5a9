#!/usr/bin/env node
// portainer-manager: `sync all` brings the whole environment to the state of
// the manifests, stage by stage (lib/sync/stages.mts); `sync stack <name> to
// <vmid>` deploys one application stack (in the bash this branch was dead
// code: its argument parser never reached it, and the `sync_stack` function
// it named did not exist). Normally reached as `phoenix sync ...`.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runMain, withHostLock } from '../../lib/core/main.mts';
import { defineArgs } from '../../lib/core/args.mts';
import { isDryRun } from '../../lib/core/context.mts';
import { loadConfig, resolveConfigPaths } from '../../lib/config/load.mts';
import { info } from '../../lib/core/log.mts';
import { UsageError } from '../../lib/core/errors.mts';
import { STAGES, type SyncContext } from '../../lib/sync/stages.mts';
import { runStages } from '../../lib/sync/engine.mts';

const USAGE = `Usage: portainer-manager.sh [--config FILE] [--reset-portainer] [--dry-run] sync <target>

Targets:
  all                        every stage, in order: stack files, trusted CA, DNS,
                             firewall, swarm, certificates, Portainer, Traefik,
                             Nginx, application stacks
  stack <name> to <vmid>     deploy one application stack (from the stacks
                             manifest) to the swarm VM <vmid> belongs to

Options:
  --config FILE        the hypervisor config (HYPERVISOR_CONFIG_FILE)
  --reset-portainer    remove the Portainer stack and its data volume first
                       (also PHOENIX_RESET_PORTAINER=true)
  --dry-run            print the whole plan, change nothing
  --help               this text

Environment: PHOENIX_PORTAINER_URL (Portainer's address; default
https://<network.portainer_server_ip>:<portainer_server_port>),
PHOENIX_PORTAINER_CA (CA file to verify it; default the Phoenix root CA).
The admin password is read from portainer_api.admin_password_file, which is
created (mode 600) with a random password when missing.
`;

const STACK_STAGES = new Set(['stack-files', 'swarm', 'portainer', 'stacks']);

const ARGS = defineArgs({
  name: 'portainer-manager.sh',
  usage: USAGE,
  dryRun: true,
  flags: { config: { type: 'string', needs: 'a file' }, 'reset-portainer': { type: 'boolean' } },
  commands: { sync: { positionals: [{ name: 'target', variadic: true, optional: true }] } },
  invalidCommand: (action) => (action === undefined ? 'no action given' : `Invalid action '${action}' for portainer-manager. Valid actions: sync`),
});

await runMain(ARGS, async (args, context) => {
  const { options } = context;
  if (args.flags.config !== undefined) process.env.HYPERVISOR_CONFIG_FILE = path.resolve(args.flags.config);
  if (args.flags['reset-portainer']) options.resetPortainer = true;
  const [target, ...rest] = args.operands;

  let onlyStack: SyncContext['onlyStack'];
  if (target === 'all' && rest.length === 0) {
    onlyStack = undefined;
  } else if (target === 'stack' && rest.length === 3 && rest[1] === 'to') {
    onlyStack = { name: rest[0] as string, vmid: rest[2] as string };
  } else {
    throw new UsageError(`Invalid target for 'sync': ${[target, ...rest].filter(Boolean).join(' ') || '(none)'}`, { hint: "use 'sync all' or 'sync stack <name> to <vmid>'" });
  }

  const paths = resolveConfigPaths();
  const config = loadConfig(paths);
  // Every manifest sync reads is validated before anything changes.
  void config.hypervisor;
  void config.stacks;
  void config.certificates;
  config.validateReferences();
  if (onlyStack) {
    if (!config.stacks.docker_stacks[onlyStack.name]) throw new UsageError(`no stack '${onlyStack.name}' in ${paths.stacks}`, { hint: `known stacks: ${Object.keys(config.stacks.docker_stacks).join(', ')}` });
    const vm = config.vm.vms.find((v) => String(v.vmid) === onlyStack?.vmid);
    if (!vm) throw new UsageError(`VM ${onlyStack.vmid} is not in ${paths.vm}`);
    if (!vm.swarm_role) throw new UsageError(`VM ${onlyStack.vmid} has no swarm_role: it is not part of the swarm a stack is deployed to`);
  }
  if (isDryRun()) info('--- DRY RUN MODE ENABLED: nothing will be changed ---');
  if (options.resetPortainer) info('--- PORTAINER RESET REQUESTED ---');

  return withHostLock(context, async (lock) => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-sync-'));
    try {
      const ctx: SyncContext = {
        config,
        options,
        paths,
        lockToken: lock?.token ?? process.env.PHOENIX_LOCK_TOKEN,
        scratch,
        resetPortainer: options.resetPortainer,
        environment: 'production',
        ...(onlyStack ? { onlyStack } : {}),
      };
      const stages = onlyStack ? STAGES.filter((s) => STACK_STAGES.has(s.id)) : STAGES;
      info(onlyStack ? `--- Deploying stack ${onlyStack.name} (swarm of VM ${onlyStack.vmid}) ---` : '--- Full System State Synchronization ---');
      const report = await runStages(stages, ctx);
      return report.exitCode;
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});
