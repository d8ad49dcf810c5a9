// portainer-manager's work: the target checked against the manifests, then
// the stages of `sync all` (stages.mts) run by the engine (engine.mts).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withHostLock, type ScriptContext } from '../core/main.mts';
import { isDryRun } from '../core/context.mts';
import { loadConfig, resolveConfigPaths } from '../config/load.mts';
import { info } from '../core/log.mts';
import { UsageError } from '../core/errors.mts';
import { STAGES, type SyncContext } from './stages.mts';
import { runStages } from './engine.mts';

/** The stages a single stack's deployment needs. */
const STACK_STAGES = new Set(['stack-files', 'swarm', 'portainer', 'stacks']);

/**
 * portainer-manager's `sync <target>`: `all` runs every stage, `stack <name>
 * to <vmid>` the stages one stack needs. The manifests are validated before
 * anything changes; the stages run under the host lock in a scratch
 * directory that is removed afterwards.
 */
export async function runPortainerManager(operands: readonly string[], context: ScriptContext): Promise<number> {
  const { options } = context;
  const [target, ...rest] = operands;

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
}
