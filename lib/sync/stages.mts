// The stages of `sync all`, in the bash's order, each
// one idempotent and each one reporting whether it changed anything:
//
//   stack files -> trusted CA -> DNS -> firewall -> swarm -> certificates
//   -> Portainer -> Traefik -> Nginx -> application stacks
//
// Stages run the other Phoenix scripts by their upstream names through the
// legacy bridge (the port where there is one, the bash original otherwise)
// and judge them from the outside (lib/sync/child.mts). What the bash got
// wrong and these stages do not: certificates are renewed when due, not all
// of them on every run; the Portainer stack is deployed once, reset under its
// real names, and its admin is actually set up; Traefik is restarted when
// its static file changed; nginx is checked with
// `nginx -t` before it is reloaded and the old files are put back when the
// check fails; stack files are mirrored without `chmod -R 777`.

import path from 'node:path';
import { runChild } from './child.mts';
import { renderStack } from '../stacks/render.mts';
import { ensureStack } from '../portainer/api.mts';
import { DEFAULT_ADMIN_PASSWORD_FILE } from '../portainer/password.mts';
import { ADMIN_SECRET } from '../portainer/secret.mts';
import {
  changed,
  unchanged,
  skipped,
  failed,
  childFailure,
  childChange,
  stacksExport,
  applicationStacks,
  PORTAINER_STACK,
  SWARM_MANAGER,
  type StageResult,
  type SyncContext,
  type Stage,
} from './stage-kit.mts';
import { certificates, dns, firewall, swarm, syncStackFiles, trustedCa } from './host-stages.mts';
import { portainer, portainerTarget } from './portainer-stage.mts';
import { nginx, traefik } from './gateway-stages.mts';

export type { StageStatus, StageResult, SyncContext, Stage } from './stage-kit.mts';
export { PORTAINER_STACK, SWARM_MANAGER, stacksExport, applicationStacks } from './stage-kit.mts';
export { portainerTarget, type PortainerTarget } from './portainer-stage.mts';

// ---------------------------------------------------------------- stage 10: application stacks

async function applications(ctx: SyncContext): Promise<StageResult> {
  const stacks = applicationStacks(ctx);
  if (stacks.length === 0) return skipped('no VM lists application stacks (docker_stacks)');
  const done: string[] = [];
  const same: string[] = [];
  for (const { name } of stacks) {
    const manifest = ctx.config.stacks.docker_stacks[name];
    if (!manifest) return failed(`stack '${name}' is not in ${ctx.paths.stacks}`);
    if (!manifest.environments[ctx.environment]) return failed(`stack '${name}' has no '${ctx.environment}' environment in ${ctx.paths.stacks}`);
    if (ctx.portainer) {
      const spec = await renderForPortainer(ctx, name);
      const outcome = await ensureStack(ctx.portainer.client, ctx.portainer.token, ctx.portainer.swarmEndpointId, spec);
      (outcome === 'unchanged' ? same : done).push(`${spec.name} (Portainer)`);
      continue;
    }
    const run = await runChild(ctx, SWARM_MANAGER, ['deploy', name, '--env', ctx.environment]);
    const failure = childFailure(run);
    if (failure) return failure.status === 'failed' ? { ...failure, detail: `stack ${name}: ${failure.detail}` } : failure;
    (childChange(run).changed ? done : same).push(`${ctx.environment}_${name}`);
  }
  if (done.length > 0) return changed(`deployed ${done.join(', ')}${same.length ? `; unchanged ${same.join(', ')}` : ''}`);
  return unchanged(`${same.join(', ')} up to date`);
}

/**
 * The compose text Portainer deploys, rendered by the stacks module (the
 * manifest's variables substituted, its Traefik labels merged), exactly as
 * swarm-manager would deploy it; the variables also go along as the
 * stack's environment, which Portainer shows.
 */
async function renderForPortainer(ctx: SyncContext, name: string): Promise<{ name: string; compose: string; env: Array<{ name: string; value: string }> }> {
  const rendered = await renderStack(ctx.config, name, ctx.environment, { baseDir: ctx.options.baseDir, hostRoot: ctx.options.hostRoot });
  const variables = ctx.config.stacks.docker_stacks[name]?.environments[ctx.environment]?.variables ?? [];
  return { name: rendered.name, compose: rendered.text, env: variables.map((v) => ({ name: v.name, value: v.value })) };
}

// ---------------------------------------------------------------- the list

export const STAGES: readonly Stage[] = [
  { id: 'stack-files', title: 'stack files', needs: [], after: [], describe: (c) => `mirror ${path.join(c.options.baseDir, 'stacks')} to ${stacksExport(c)}`, run: syncStackFiles },
  { id: 'trusted-ca', title: 'trusted CA', needs: [], after: [], describe: () => 'hypervisor_setup/hypervisor_feature_install_trusted_ca.sh', run: trustedCa },
  { id: 'dns', title: 'DNS', needs: [], after: [], describe: () => 'hypervisor_setup/hypervisor_feature_setup_dns_server.sh', run: dns },
  { id: 'firewall', title: 'firewall', needs: [], after: [], describe: (c) => `hypervisor_setup/hypervisor_feature_setup_firewall.sh ${c.paths.hypervisor}`, run: firewall },
  { id: 'swarm', title: 'swarm', needs: [], after: ['firewall'], describe: () => `${SWARM_MANAGER} init, then join for each worker`, run: swarm },
  { id: 'certificates', title: 'certificates', needs: [], after: ['trusted-ca'], describe: () => 'managers/certificate-renewal-manager.sh (renews what is due)', run: certificates },
  { id: 'portainer', title: 'Portainer', needs: ['swarm'], after: ['certificates', 'stack-files'], describe: (c) => `admin password from ${c.config.hypervisor.portainer_api?.admin_password_file ?? DEFAULT_ADMIN_PASSWORD_FILE} (created if missing); ${c.resetPortainer ? 'remove the Portainer stack, volume and secret; ' : ''}Swarm secret ${ADMIN_SECRET}, deploy ${PORTAINER_STACK}; admin and environments through ${portainerTarget(c).url}`, run: portainer },
  { id: 'traefik', title: 'Traefik', needs: [], after: ['certificates'], describe: () => 'generate_traefik_config.sh; install traefik.yml and dynamic_conf.yml in the Traefik CT', run: traefik },
  { id: 'nginx', title: 'Nginx', needs: [], after: ['certificates', 'traefik'], describe: () => 'generate_nginx_gateway_config.sh; install in the gateway CT, nginx -t, reload', run: nginx },
  {
    id: 'stacks',
    title: 'application stacks',
    needs: ['swarm'],
    after: ['portainer', 'stack-files'],
    describe: (c) => `deploy ${applicationStacks(c).map((s) => s.name).join(', ') || '(none)'} (${c.environment})`,
    run: applications,
  },
];
