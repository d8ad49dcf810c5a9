// `deploy` and `rm` of a stack on the Swarm (swarm-manager.sh). The
// compose file is rendered on the host (lib/stacks/render.mts), kept
// atomically in the stacks directory as the record of what was deployed,
// and sent to the manager on stdin (`docker stack deploy --compose-file -`):
// no temporary file on the host or in the guest to leave behind when a
// deploy fails (the bash left docker-compose.tmp.yml), no NFS mount needed
// for it.
//
// A deploy is skipped when every service of the running stack carries the
// rendered file's digest label and the stack has no other service: the
// digest lives with the stack itself, so a stack removed or redeployed by
// hand is deployed again.

import { info, success, warn, debug } from '../core/log.mts';
import { removeFile } from '../core/fs.mts';
import { isDryRun } from '../core/context.mts';
import { PhoenixError, UsageError } from '../core/errors.mts';
import { DIGEST_LABEL, NAME_PATTERN, renderedPath, renderStack, stackEntry, writeRenderedStack, type RenderedStack } from '../stacks/render.mts';
import { docker, dockerQuery } from './docker.mts';
import { requireActiveManager, requireRunning, swarmManager, type Outcome, type SwarmContext } from './cluster.mts';

export interface StackRunOptions {
  baseDir: string;
  hostRoot: string;
}

export interface DeployResult {
  outcome: Outcome;
  rendered: RenderedStack;
  file: string;
}

/** Service IDs of a stack, optionally only those carrying a label value. */
async function stackServices(context: SwarmContext, managerVmid: string, name: string, label?: string): Promise<string[]> {
  const args = ['service', 'ls', '-q', '--filter', `label=com.docker.stack.namespace=${name}`];
  if (label !== undefined) args.push('--filter', `label=${label}`);
  const result = await dockerQuery(managerVmid, args, context.timing);
  return result.stdout.split('\n').filter((line) => line.trim() !== '');
}

/**
 * A stack's external networks are Phoenix's shared overlay networks
 * (traefik-public): created when missing, as sync all did. Its external
 * secrets hold data only their owner has, so a missing one stops the deploy
 * here, by name, instead of in the middle of `docker stack deploy`.
 */
async function ensureExternals(context: SwarmContext, managerVmid: string, rendered: RenderedStack): Promise<void> {
  if (rendered.externalSecrets.length > 0) {
    const listed = await dockerQuery(managerVmid, ['secret', 'ls', '--format', '{{.Name}}'], context.timing);
    const present = new Set(listed.stdout.split('\n').map((l) => l.trim()));
    const missing = rendered.externalSecrets.filter((name) => !present.has(name));
    if (missing.length > 0) {
      throw new PhoenixError(`stack '${rendered.name}' needs the Swarm secret${missing.length === 1 ? '' : 's'} ${missing.join(', ')}, which ${missing.length === 1 ? 'does' : 'do'} not exist`, {
        hint: 'portainer-manager.sh sync all creates portainer_admin_password from portainer_api.admin_password_file; others: docker secret create <name> - on the manager',
      });
    }
  }
  if (rendered.externalNetworks.length === 0) return;
  const listed = await dockerQuery(managerVmid, ['network', 'ls', '--filter', 'scope=swarm', '--format', '{{.Name}}'], context.timing);
  const present = new Set(listed.stdout.split('\n').map((l) => l.trim()));
  for (const name of rendered.externalNetworks) {
    if (present.has(name)) continue;
    info(`Creating the overlay network ${name} (external in ${rendered.template})`);
    await docker(managerVmid, ['network', 'create', '--driver', 'overlay', '--attachable', name], context.timing);
  }
}

export async function deployStack(context: SwarmContext, stack: string, environment: string, options: StackRunOptions): Promise<DeployResult> {
  info(`Preparing deployment for stack '${stack}' in environment '${environment}'...`);
  if (!stackEntry(context.config, stack)) warn(`stack '${stack}' is not in ${context.config.paths.stacks}: its compose file is deployed without variables or labels`);
  const rendered = await renderStack(context.config, stack, environment, options);
  info(`Rendered ${rendered.template}${rendered.substituted.length ? `; variables: ${rendered.substituted.join(', ')}` : ''}`);
  for (const name of rendered.unresolved) warn(`\${${name}} has no value in ${context.config.paths.stacks} for '${environment}': docker will leave it empty`);
  for (const label of rendered.addedLabels) info(`Added Traefik label ${label}`);
  for (const name of rendered.unusedVariables) debug(`variable ${name} is not used by ${rendered.template}`);

  const manager = swarmManager(context.config);
  await requireRunning(manager.vmid);
  await requireActiveManager(context, manager);

  await ensureExternals(context, manager.vmid, rendered);

  const file = renderedPath(context.config, stack, environment, options.hostRoot);
  writeRenderedStack(rendered, file);

  const all = await stackServices(context, manager.vmid, rendered.name);
  const current = await stackServices(context, manager.vmid, rendered.name, `${DIGEST_LABEL}=${rendered.digest}`);
  if (all.length === rendered.services.length && current.length === rendered.services.length) {
    success(`Stack '${rendered.name}' is up to date (digest ${rendered.digest.slice(0, 12)}); nothing to do.`);
    return { outcome: 'unchanged', rendered, file };
  }
  info(`Deploying stack '${rendered.name}' (${rendered.services.length} service${rendered.services.length === 1 ? '' : 's'}, digest ${rendered.digest.slice(0, 12)}) on VM ${manager.vmid}...`);
  await docker(manager.vmid, ['stack', 'deploy', '--compose-file', '-', '--with-registry-auth', rendered.name], context.timing, { input: rendered.text });
  if (!isDryRun()) {
    const after = await stackServices(context, manager.vmid, rendered.name, `${DIGEST_LABEL}=${rendered.digest}`);
    if (after.length !== rendered.services.length) warn(`after the deploy ${after.length} of ${rendered.services.length} services of '${rendered.name}' carry the new digest`);
    success(`Stack '${rendered.name}' deployed successfully.`);
  }
  return { outcome: 'changed', rendered, file };
}

export async function removeStack(context: SwarmContext, stack: string, environment: string, options: StackRunOptions): Promise<Outcome> {
  if (!NAME_PATTERN.test(stack) || !NAME_PATTERN.test(environment)) throw new UsageError(`invalid stack or environment name: '${stack}', '${environment}'`);
  const name = `${environment}_${stack}`;
  const manager = swarmManager(context.config);
  info(`Removing stack '${name}'...`);
  await requireRunning(manager.vmid);
  await requireActiveManager(context, manager);
  const stacks = await dockerQuery(manager.vmid, ['stack', 'ls', '--format', '{{.Name}}'], context.timing);
  const deployed = stacks.stdout.split('\n').map((l) => l.trim()).includes(name);
  const file = renderedPath(context.config, stack, environment, options.hostRoot);
  if (!deployed) {
    const removed = removeFile(file);
    success(`Stack '${name}' is not deployed; nothing to remove${removed === 'removed' ? ' (its stale rendered file was removed)' : ''}.`);
    return removed === 'removed' ? 'changed' : 'unchanged';
  }
  await docker(manager.vmid, ['stack', 'rm', name], context.timing);
  removeFile(file);
  if (!isDryRun()) success(`Stack '${name}' removed successfully.`);
  return 'changed';
}
