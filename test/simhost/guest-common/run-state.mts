// `status` and `reboot` as pct and qm both do them; the figures of
// `status --verbose` are each tool's own.

import type { Ctx } from '../cli.mts';
import { applyPending, isRunning, loadGuest, markRunning, runtimeOf } from '../guests.mts';
import { writeConfigFile, type GuestConfig } from '../pveconf.mts';
import { die, loadRuntime, updateRuntime, type GuestKind, type GuestRuntime, type Runtime } from '../state.mts';

export type StatusFigures = (config: GuestConfig, rt: Runtime, running: boolean, guest: GuestRuntime) => Record<string, string | number>;

/** `status [--verbose]`: one line, or `key: value` lines sorted by key (pid while running, template when one). */
export function statusCommand(ctx: Ctx, kind: GuestKind, vmid: string, verbose: boolean, figures: StatusFigures): void {
  const config = loadGuest(ctx, kind, vmid);
  const rt = loadRuntime(ctx.root);
  const running = isRunning(rt, vmid, ctx.root, kind);
  if (!verbose) {
    ctx.out(`status: ${running ? 'running' : 'stopped'}\n`);
    return;
  }
  const g = runtimeOf(rt, vmid);
  const stat = figures(config, rt, running, g);
  if (running && g.pid) stat.pid = g.pid;
  if (config.main.props.template === '1') stat.template = 1;
  ctx.out(Object.keys(stat).sort().map((k) => `${k}: ${stat[k]}\n`).join(''));
}

/** `reboot`: pending changes are applied; both pve-container and qemu-server say "VM" when the guest is not running. */
export function rebootCommand(ctx: Ctx, kind: GuestKind, vmid: string, agentDelayMs = 0): void {
  ctx.begin([{ kind, vmid }]);
  updateRuntime(ctx.root, (rt) => {
    if (!isRunning(rt, vmid, ctx.root, kind)) die(`VM ${vmid} not running`);
    const config = loadGuest(ctx, kind, vmid, { inWorker: true });
    if (applyPending(config)) writeConfigFile(ctx.root, kind, vmid, config);
    markRunning(rt, vmid, Date.now(), agentDelayMs);
  });
}
