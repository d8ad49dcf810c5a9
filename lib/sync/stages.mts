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

import fs from 'node:fs';
import path from 'node:path';
import type { ConfigPaths, PhoenixConfig, VmConfig } from '../config/load.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { ConfigError } from '../core/errors.mts';
import { ensureDir, writeFileAtomic } from '../core/fs.mts';
import { info, warn } from '../core/log.mts';
import * as pct from '../pve/pct.mts';
import * as qm from '../pve/qm.mts';
import { isDryRun } from '../core/context.mts';
import { claimsNoChange, failureLine, runChild, type ChildContext, type ChildRun } from './child.mts';
import { deployGuestFile, restoreGuestFile, type DeployedFile } from './guestfiles.mts';
import { DYNAMIC_RELATIVE, traefikCt } from '../gateway/traefik.mts';
import { renderStack, stacksDirectory } from '../stacks/render.mts';
import { gatewayModel, renderGatewayFiles, NGINX_CONF_RELATIVE, SITE_RELATIVE, STREAM_RELATIVE } from '../gateway/nginx.mts';
import { ensureGuestLink, restoreGuestLink } from '../gateway/guest.mts';
import { SITE_ENABLED, SITE_LINK_TARGET } from '../gateway/nginx-app.mts';
import { PortainerClient } from '../portainer/client.mts';
import { ensureAdmin, ensureEndpoint, ensureStack, login, systemStatus, ENDPOINT_AGENT, ENDPOINT_LOCAL_DOCKER, type Outcome } from '../portainer/api.mts';
import { adminCredentials, hostPath, DEFAULT_ADMIN_PASSWORD_FILE } from '../portainer/password.mts';
import { ADMIN_SECRET, ensureAdminSecret, removeAdminSecret } from '../portainer/secret.mts';
import { DEFAULT_AGENT_IMAGE, ensureAgent } from '../portainer/agent.mts';
import { docker, guestTiming } from '../swarm/docker.mts';

export type StageStatus = 'changed' | 'unchanged' | 'failed' | 'skipped';

export interface StageResult {
  status: StageStatus;
  /** One line: what changed, why nothing did, or why it was skipped. */
  detail: string;
  /** For a failure: the command (or API call) that failed. */
  command?: string;
  /** The failed child script's exit status, passed on as sync's own. */
  exitCode?: number;
}

export interface SyncContext extends ChildContext {
  config: PhoenixConfig;
  options: PhoenixOptions;
  paths: ConfigPaths;
  resetPortainer: boolean;
  /** The stacks environment sync deploys (the bash always used production). */
  environment: string;
  /** Set by the Portainer stage once it is logged in. */
  portainer?: { client: PortainerClient; token: string; swarmEndpointId: number };
  /** `sync stack <name> to <vmid>`: the only application stack to deploy. */
  onlyStack?: { name: string; vmid: string };
}

export interface Stage {
  id: string;
  title: string;
  /** Stages that must have worked (changed/unchanged) for this one to make sense. */
  needs: string[];
  /** Stages that must not have failed (a skip is fine). */
  after: string[];
  /** What the stage will do, for the plan printed up front. */
  describe(ctx: SyncContext): string;
  run(ctx: SyncContext): Promise<StageResult>;
}

/** The Portainer server stack, deployed by the Portainer stage and not again with the applications. */
export const PORTAINER_STACK = 'portainer_service';
export const SWARM_MANAGER = 'managers/swarm-manager.sh';
const DEFAULT_AGENT_PORT = 9001;
const DEFAULT_PORTAINER_PORT = 9443;
/** Where generate_traefik_config.sh writes the static configuration, under the base directory. */
const STATIC_RELATIVE = 'etc/traefik/traefik.yml';

// ---------------------------------------------------------------- helpers

const changed = (detail: string): StageResult => ({ status: 'changed', detail });
const unchanged = (detail: string): StageResult => ({ status: 'unchanged', detail });
const skipped = (detail: string): StageResult => ({ status: 'skipped', detail });
const failed = (detail: string, command?: string, exitCode?: number): StageResult => ({ status: 'failed', detail, ...(command === undefined ? {} : { command }), ...(exitCode === undefined ? {} : { exitCode }) });

function onHost(options: PhoenixOptions, file: string): string {
  return hostPath(options, file);
}

/** A child's outcome as a stage result, or undefined when it worked (the caller goes on). */
function childFailure(run: ChildRun): StageResult | undefined {
  if (run.kind === 'missing') return skipped(`not available: ${run.problem ?? run.command}`);
  if (run.code !== 0) return failed(failureLine(run) || `exit ${run.code}`, run.command, run.code);
  return undefined;
}

/** Whether a child that worked changed something, and a few words on what. */
function childChange(run: ChildRun): { changed: boolean; what: string } {
  const parts: string[] = [];
  if (run.mutations.length > 0) parts.push(`${run.mutations.length} command${run.mutations.length === 1 ? '' : 's'}`);
  if (run.filesChanged.length > 0) parts.push(`${run.filesChanged.length} file${run.filesChanged.length === 1 ? '' : 's'}`);
  if (parts.length > 0) return { changed: true, what: parts.join(', ') };
  if (run.kind === 'legacy' && !claimsNoChange(run)) return { changed: true, what: 'bash original (changes not observable)' };
  return { changed: false, what: '' };
}

function fromChild(run: ChildRun, done: string, same: string): StageResult {
  const failure = childFailure(run);
  if (failure) return failure;
  const change = childChange(run);
  return change.changed ? changed(`${done} (${change.what})`) : unchanged(same);
}

function vms(ctx: SyncContext): VmConfig[] {
  return ctx.config.vm.vms.filter((vm) => vm.is_template !== true);
}

function swarmManager(ctx: SyncContext): VmConfig | undefined {
  return vms(ctx).find((vm) => vm.swarm_role === 'manager');
}

function portainerPrimary(ctx: SyncContext): VmConfig | undefined {
  return vms(ctx).find((vm) => vm.portainer_role === 'primary');
}

function address(vm: VmConfig): string | undefined {
  const ip = vm.network_config?.ip;
  return ip && ip !== 'dhcp' ? ip.split('/')[0] : undefined;
}

/** The host directory the stack files are mirrored to (the one swarm-manager reads and the manager mounts). */
export function stacksExport(ctx: SyncContext): string {
  return stacksDirectory(ctx.config, '/');
}

/** The stack templates to mirror: <base>/stacks (the bash's layout), else stacks/ beside the stacks manifest. */
function stackSources(ctx: SyncContext): string | undefined {
  return [path.join(ctx.options.baseDir, 'stacks'), path.join(path.dirname(ctx.paths.stacks), 'stacks')].find((dir) => fs.existsSync(dir));
}

/** The application stacks to deploy: each VM's docker_stacks, once each, without Portainer's own. */
export function applicationStacks(ctx: SyncContext): Array<{ name: string; vmid: string }> {
  if (ctx.onlyStack) return [ctx.onlyStack];
  const seen = new Set<string>();
  const out: Array<{ name: string; vmid: string }> = [];
  for (const vm of vms(ctx)) {
    for (const name of vm.docker_stacks ?? []) {
      if (name === PORTAINER_STACK || seen.has(name)) continue;
      seen.add(name);
      out.push({ name, vmid: String(vm.vmid) });
    }
  }
  return out;
}

async function guestState(kind: 'lxc' | 'vm', id: string): Promise<'running' | 'stopped' | 'absent'> {
  return kind === 'lxc' ? pct.status(id) : qm.status(id);
}

// ---------------------------------------------------------------- stage 1: stack files

async function syncStackFiles(ctx: SyncContext): Promise<StageResult> {
  const source = stackSources(ctx);
  const target = onHost(ctx.options, stacksExport(ctx));
  if (source === undefined) return skipped(`no stack templates in ${path.join(ctx.options.baseDir, 'stacks')} or beside ${ctx.paths.stacks}`);
  const wanted = new Map<string, { file: string; mode: number }>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) wanted.set(path.relative(source, full), { file: full, mode: (fs.statSync(full).mode & 0o111) !== 0 ? 0o755 : 0o644 });
    }
  };
  walk(source);
  let count = 0;
  if (ensureDir(target, 0o755) !== 'unchanged') count++;
  // Added and updated, never deleted: the directory also holds what
  // swarm-manager renders there (the bash's rsync --delete would remove it).
  for (const [relative, { file, mode }] of wanted) {
    if (writeFileAtomic(path.join(target, relative), fs.readFileSync(file), { mode, dirMode: 0o755 }) !== 'unchanged') count++;
  }
  return count > 0 ? changed(`${count} change${count === 1 ? '' : 's'} in ${target}`) : unchanged(`${wanted.size} files already in ${target}`);
}

// ---------------------------------------------------------------- stages 2-4: host setup scripts

async function trustedCa(ctx: SyncContext): Promise<StageResult> {
  const run = await runChild(ctx, 'hypervisor_setup/hypervisor_feature_install_trusted_ca.sh', [], [onHost(ctx.options, '/usr/local/share/ca-certificates')]);
  return fromChild(run, 'host trust store updated', 'root CA already trusted');
}

async function dns(ctx: SyncContext): Promise<StageResult> {
  if (ctx.config.hypervisor.dns_server?.enabled !== true) return skipped('dns_server.enabled is not true');
  const watch = ['/etc/dnsmasq.conf', '/etc/dnsmasq.d', '/etc/resolv.conf'].map((f) => onHost(ctx.options, f));
  const run = await runChild(ctx, 'hypervisor_setup/hypervisor_feature_setup_dns_server.sh', [], watch);
  return fromChild(run, 'DNS records updated', 'DNS records in place');
}

async function firewall(ctx: SyncContext): Promise<StageResult> {
  const nodes = path.join(ctx.options.pveDir, 'nodes');
  const hostFiles = fs.existsSync(nodes) ? fs.readdirSync(nodes).map((n) => path.join(nodes, n, 'host.fw')) : [];
  const run = await runChild(ctx, 'hypervisor_setup/hypervisor_feature_setup_firewall.sh', [ctx.paths.hypervisor], [path.join(ctx.options.pveDir, 'firewall'), ...hostFiles]);
  return fromChild(run, 'firewall rules rewritten', 'firewall rules unchanged');
}

// ---------------------------------------------------------------- stage 5: swarm

async function swarm(ctx: SyncContext): Promise<StageResult> {
  const manager = swarmManager(ctx);
  if (!manager) return skipped('no VM has swarm_role manager');
  const state = await guestState('vm', String(manager.vmid));
  if (state !== 'running') return failed(`the Swarm manager VM ${manager.vmid} is ${state === 'absent' ? 'not created' : 'not running'}`, `qm status ${manager.vmid}`);
  const runs: ChildRun[] = [await runChild(ctx, SWARM_MANAGER, ['init'])];
  const first = childFailure(runs[0]!);
  if (first) return first;
  const planned = isDryRun() && childChange(runs[0]!).changed;
  for (const worker of vms(ctx).filter((vm) => vm.swarm_role === 'worker')) {
    if (planned) {
      info(`DRY-RUN: would join VM ${worker.vmid} once the swarm is initialised`);
      continue;
    }
    const wState = await guestState('vm', String(worker.vmid));
    if (wState !== 'running') {
      warn(`Swarm worker VM ${worker.vmid} is ${wState === 'absent' ? 'not created' : 'not running'}; not joined`);
      continue;
    }
    const run = await runChild(ctx, SWARM_MANAGER, ['join', String(worker.vmid)]);
    const failure = childFailure(run);
    if (failure) return failure;
    runs.push(run);
  }
  const changes = runs.map(childChange).filter((c) => c.changed);
  return changes.length > 0 ? changed(`swarm converged (${changes.map((c) => c.what).join('; ')})`) : unchanged(`manager ${manager.vmid} and ${runs.length - 1} worker${runs.length === 2 ? '' : 's'} already in the swarm`);
}

// ---------------------------------------------------------------- stage 6: certificates

async function certificates(ctx: SyncContext): Promise<StageResult> {
  const watch = ctx.config.certificates.flatMap((c) => [c.cert_path, c.key_path]).map((f) => onHost(ctx.options, f));
  // Not --force: the bash renewed every certificate on every sync.
  const run = await runChild(ctx, 'managers/certificate-renewal-manager.sh', [], watch);
  return fromChild(run, 'certificates issued or renewed', `${ctx.config.certificates.length} certificates valid`);
}

// ---------------------------------------------------------------- stage 7: Portainer

export interface PortainerTarget {
  url: string;
  ca?: string;
  /** Why the API part is not done (simulated host without a stand-in). */
  unavailable?: string;
}

/**
 * Portainer's address: PHOENIX_PORTAINER_URL, else https to
 * network.portainer_server_ip:portainer_server_port (or the primary VM's
 * address) verified against the Phoenix root CA (PHOENIX_PORTAINER_CA
 * overrides the CA file).
 */
export function portainerTarget(ctx: SyncContext): PortainerTarget {
  const caFile = ctx.options.portainer.caFile ?? onHost(ctx.options, ctx.config.hypervisor.step_ca?.root_ca_file ?? '/etc/phoenix/ca/root_ca.crt');
  const ca = fs.existsSync(caFile) ? fs.readFileSync(caFile, 'utf8') : undefined;
  const explicit = ctx.options.portainer.url;
  if (explicit) return { url: explicit, ...(ca === undefined ? {} : { ca }) };
  const network = ctx.config.hypervisor.network;
  const primary = portainerPrimary(ctx);
  const ip = network?.portainer_server_ip ?? (primary ? address(primary) : undefined);
  const url = `https://${ip ?? 'portainer'}:${network?.portainer_server_port ?? DEFAULT_PORTAINER_PORT}`;
  if (ctx.options.simulatedHost) return { url, unavailable: 'the simulated host runs no Portainer (set PHOENIX_PORTAINER_URL to a stand-in)' };
  if (ip === undefined) return { url, unavailable: 'no network.portainer_server_ip and the primary VM has no static address' };
  if (ca === undefined) return { url, unavailable: `the root CA ${caFile} to verify Portainer's certificate is missing` };
  return { url, ca };
}

async function portainer(ctx: SyncContext): Promise<StageResult> {
  const primary = portainerPrimary(ctx);
  if (!primary) return skipped('no VM has portainer_role primary');
  const manager = swarmManager(ctx) ?? primary;
  const notes: string[] = [];
  let changes = 0;

  const vmid = String(manager.vmid);
  const timing = guestTiming(ctx.options);
  const hasStack = ctx.config.stacks.docker_stacks[PORTAINER_STACK] !== undefined;

  if (ctx.resetPortainer) {
    // The real names (the bash removed prod_..., which never existed).
    const stackName = `${ctx.environment}_${PORTAINER_STACK}`;
    info(`--reset-portainer: removing the stack ${stackName}, its volume ${stackName}_portainer_data and the Swarm secret ${ADMIN_SECRET}`);
    const rm = await runChild(ctx, SWARM_MANAGER, ['rm', PORTAINER_STACK, '--env', ctx.environment]);
    const failure = childFailure(rm);
    if (failure && failure.status === 'failed') return failure;
    await removeVolume(ctx, vmid, `${stackName}_portainer_data`);
    await removeAdminSecret(vmid, timing);
    changes++;
    notes.push('reset');
  }

  // The password file first: the stack's secret and the API login both come from it.
  const credentials = adminCredentials(ctx.config, ctx.options);
  if (credentials.created) {
    changes++;
    notes.push(`admin password created in ${credentials.file}`);
  }

  if (hasStack) {
    if ((await ensureAdminSecret(vmid, credentials.password, timing)) === 'created') {
      changes++;
      notes.push(`Swarm secret ${ADMIN_SECRET} created`);
    }
    const deploy = await runChild(ctx, SWARM_MANAGER, ['deploy', PORTAINER_STACK, '--env', ctx.environment]);
    const failure = childFailure(deploy);
    if (failure) return failure.status === 'skipped' ? failure : { ...failure, detail: `deploying the Portainer stack: ${failure.detail}` };
    if (childChange(deploy).changed) {
      changes++;
      notes.push('stack deployed');
    }
  } else {
    notes.push(`no '${PORTAINER_STACK}' in the stacks manifest: Portainer is expected to run already`);
  }

  const agentPort = ctx.config.hypervisor.network?.portainer_agent_port ?? DEFAULT_AGENT_PORT;
  const agentImage = ctx.config.hypervisor.docker?.portainer_agent_image ?? DEFAULT_AGENT_IMAGE;
  for (const agent of vms(ctx).filter((vm) => vm.portainer_role === 'agent')) {
    const id = String(agent.vmid);
    const state = await guestState('vm', id);
    if (state !== 'running') {
      warn(`Portainer agent VM ${id} is ${state === 'absent' ? 'not created' : 'not running'}; its agent is not checked`);
      continue;
    }
    if ((await ensureAgent(id, agentImage, agentPort, timing)) !== 'unchanged') {
      changes++;
      notes.push(`agent on VM ${id} (re)started`);
    }
  }

  const target = portainerTarget(ctx);
  if (target.unavailable) {
    warn(`Portainer's admin and environments are not checked: ${target.unavailable}`);
    notes.push(`API not checked: ${target.unavailable}`);
    return changes > 0 ? changed(notes.join('; ')) : unchanged(notes.join('; '));
  }
  if (isDryRun()) {
    info(`DRY-RUN: would set up the Portainer admin '${credentials.user}' at ${target.url}, then its environments`);
    return changes > 0 ? changed(notes.join('; ')) : unchanged(`would check the admin and environments at ${target.url}`);
  }
  const client = new PortainerClient({
    baseUrl: target.url,
    ...(target.ca === undefined ? {} : { ca: target.ca }),
    ...(ctx.options.portainer.retries === undefined ? {} : { attempts: ctx.options.portainer.retries }),
    ...(ctx.options.portainer.backoffMs === undefined ? {} : { backoffMs: ctx.options.portainer.backoffMs }),
  });
  const status = await systemStatus(client);
  const admin = await ensureAdmin(client, credentials.user, credentials.password as string);
  if (admin !== 'unchanged') {
    changes++;
    notes.push(`admin '${credentials.user}' initialised`);
  }
  const token = await login(client, credentials.user, credentials.password as string, credentials.file);
  const swarmEndpoint = await ensureEndpoint(client, token, { name: primary.portainer_environment_name ?? primary.name, creationType: ENDPOINT_LOCAL_DOCKER, url: 'unix:///var/run/docker.sock' });
  const outcomes: Outcome[] = [swarmEndpoint.outcome];
  for (const agent of vms(ctx).filter((vm) => vm.portainer_role === 'agent')) {
    const host = agent.portainer_agent_hostname ?? address(agent);
    if (!host) {
      warn(`VM ${agent.vmid} is a Portainer agent without portainer_agent_hostname or a static address; no environment registered`);
      continue;
    }
    outcomes.push((await ensureEndpoint(client, token, { name: agent.portainer_environment_name ?? agent.name, creationType: ENDPOINT_AGENT, url: `tcp://${host}:${agentPort}` })).outcome);
  }
  const endpointChanges = outcomes.filter((o) => o !== 'unchanged').length;
  if (endpointChanges > 0) {
    changes++;
    notes.push(`${endpointChanges} environment${endpointChanges === 1 ? '' : 's'} registered or updated`);
  }
  ctx.portainer = { client, token, swarmEndpointId: swarmEndpoint.id };
  const summary = `Portainer ${status.Version ?? ''} at ${client.url}`.replace(/\s+/g, ' ');
  return changes > 0 ? changed(`${summary}: ${notes.join('; ')}`) : unchanged(`${summary}: admin and ${outcomes.length} environment${outcomes.length === 1 ? '' : 's'} in place`);
}


/** Remove a Docker volume on the manager once the stack's tasks have let go of it. */
async function removeVolume(ctx: SyncContext, vmid: string, volume: string): Promise<void> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const result = await docker(vmid, ['volume', 'rm', '--force', volume], guestTiming(ctx.options), { allowFailure: true });
    if (result.exitcode === 0 || /no such volume/i.test(result.stderr)) return;
    if (!/in use/i.test(result.stderr) || attempt === 10) {
      warn(`could not remove the volume ${volume} on VM ${vmid}: ${result.stderr.trim()}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(ctx.options.pollIntervalMs, 5000)));
  }
}

// ---------------------------------------------------------------- stage 8: Traefik

async function traefik(ctx: SyncContext): Promise<StageResult> {
  let id: string;
  try {
    id = traefikCt(ctx.config).id;
  } catch (err) {
    if (err instanceof ConfigError) return skipped(err.message);
    throw err;
  }
  const state = await guestState('lxc', id);
  if (state !== 'running') return skipped(`CT ${id} is ${state === 'absent' ? 'not created' : 'not running'}`);
  const generated = path.join(ctx.options.baseDir, DYNAMIC_RELATIVE);
  const run = await runChild(ctx, 'generate_traefik_config.sh', [], [generated, path.join(ctx.options.baseDir, STATIC_RELATIVE)]);
  const failure = childFailure(run);
  if (failure) return failure;
  const staticGenerated = path.join(ctx.options.baseDir, STATIC_RELATIVE);
  const files = [
    { host: staticGenerated, guestPath: '/etc/traefik/traefik.yml' },
    { host: generated, guestPath: '/etc/traefik/dynamic/dynamic_conf.yml' },
  ];
  const missing = files.filter((f) => !fs.existsSync(f.host));
  if (missing.length > 0) {
    if (isDryRun()) return changed(`CT ${id}: would install the generated ${files.map((f) => f.guestPath).join(' and ')} where they differ`);
    return failed(`generate_traefik_config.sh left no ${missing.map((f) => f.host).join(' or ')}`, run.command);
  }
  const [staticText, dynamicText] = files.map((f) => fs.readFileSync(f.host, 'utf8')) as [string, string];
  const staticFile = await deployGuestFile(id, { guestPath: '/etc/traefik/traefik.yml', text: staticText }, ctx.scratch);
  const dynamicFile = await deployGuestFile(id, { guestPath: '/etc/traefik/dynamic/dynamic_conf.yml', text: dynamicText }, ctx.scratch);
  const changedFiles = [staticFile, dynamicFile].filter((f) => f.outcome !== 'unchanged').map((f) => f.guestPath);
  if (staticFile.outcome !== 'unchanged') {
    // The static file is read only at start (the bash's `systemctl start` left the old one in force).
    await pct.exec(id, ['systemctl', 'restart', 'traefik']);
  }
  if (changedFiles.length === 0) return unchanged(`CT ${id}: traefik.yml and dynamic_conf.yml up to date`);
  return changed(`CT ${id}: ${changedFiles.join(', ')}${staticFile.outcome !== 'unchanged' ? '; traefik restarted' : ' (picked up by the file provider)'}`);
}

// ---------------------------------------------------------------- stage 9: Nginx

async function nginx(ctx: SyncContext): Promise<StageResult> {
  const model = gatewayModel(ctx.config);
  const id = model.gatewayId;
  const state = await guestState('lxc', id);
  if (state !== 'running') return skipped(`CT ${id} is ${state === 'absent' ? 'not created' : 'not running'}`);
  const relatives = [NGINX_CONF_RELATIVE, SITE_RELATIVE, STREAM_RELATIVE];
  const run = await runChild(ctx, 'generate_nginx_gateway_config.sh', [], relatives.map((r) => path.join(ctx.options.baseDir, r)));
  const failure = childFailure(run);
  if (failure) return failure;
  const rendered = new Map(renderGatewayFiles(model).map((f) => [f.relative, f.text]));
  const text = (relative: string): string => {
    const file = path.join(ctx.options.baseDir, relative);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : (rendered.get(relative) as string);
  };
  // The site lives in sites-available; sites-enabled/gateway is the link
  // nginx.conf's include reads through, as CT 101's application script and
  // the bash toolkit leave it (a copy there would hide later edits).
  const files = [
    { guestPath: '/etc/nginx/nginx.conf', text: text(NGINX_CONF_RELATIVE) },
    { guestPath: '/etc/nginx/sites-available/gateway', text: text(SITE_RELATIVE) },
    { guestPath: '/etc/nginx/stream.d/stream-gateway.conf', text: text(STREAM_RELATIVE) },
  ];
  const deployed: DeployedFile[] = [];
  for (const file of files) deployed.push(await deployGuestFile(id, file, ctx.scratch));
  const link = await ensureGuestLink(id, SITE_ENABLED, SITE_LINK_TARGET);
  let removedDefault = false;
  for (const stale of ['/etc/nginx/sites-enabled/default', '/etc/nginx/conf.d/default.conf']) {
    if (!isDryRun() && (await pct.exec(id, ['test', '-e', stale], { mutating: false, allowFailure: true, quiet: true })).code === 0) {
      await pct.exec(id, ['rm', '-f', stale]);
      removedDefault = true;
    }
  }
  const changedFiles = deployed.filter((d) => d.outcome !== 'unchanged');
  if (changedFiles.length === 0 && !removedDefault && !link) return unchanged(`CT ${id}: gateway configuration up to date`);
  const check = await pct.exec(id, ['nginx', '-t'], { allowFailure: true });
  if (check.code !== 0) {
    if (link) await restoreGuestLink(id, link, 'nginx');
    for (const d of changedFiles.reverse()) await restoreGuestFile(id, d, ctx.scratch);
    const said = (check.stderr || check.stdout).trim().split('\n');
    const why = said.find((l) => /\[emerg\]|\[error\]/.test(l)) ?? said.filter((l) => /failed/i.test(l)).at(-1) ?? `exit ${check.code}`;
    return failed(`nginx rejected the new configuration, the previous files were put back: ${why}`, `pct exec ${id} -- nginx -t`);
  }
  await pct.exec(id, ['systemctl', 'reload', 'nginx']);
  return changed(`CT ${id}: ${[...changedFiles.map((d) => d.guestPath), ...(link ? [`${SITE_ENABLED} linked`] : []), ...(removedDefault ? ['default site removed'] : [])].join(', ')}; nginx reloaded`);
}

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
