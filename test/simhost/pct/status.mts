// `pct list` and `pct status`: pve-container's columns and status fields.

import type { Ctx } from '../cli.mts';
import { statusCommand } from '../guest-common/run-state.mts';
import { diskSizeOption, isRunning } from '../guests.mts';
import { listGuestIds, readConfigFile } from '../pveconf.mts';
import { loadRuntime } from '../state.mts';

export function list(ctx: Ctx): void {
  ctx.begin();
  const rt = loadRuntime(ctx.root);
  const ids = listGuestIds(ctx.root, 'lxc');
  if (ids.length === 0) return;
  const row = (a: string, b: string, c: string, d: string) => `${a.padEnd(10)} ${b.padEnd(10)} ${c.padEnd(12)} ${d.padEnd(20)}\n`;
  let out = row('VMID', 'Status', 'Lock', 'Name');
  for (const id of ids) {
    const config = readConfigFile(ctx.root, 'lxc', id);
    if (!config) continue;
    const name = (config.main.props.hostname ?? `CT${id}`).replace(/\s/g, '');
    out += row(id, isRunning(rt, id, ctx.root, 'lxc') ? 'running' : 'stopped', config.main.props.lock ?? '', name);
  }
  ctx.out(out);
}

export function status(ctx: Ctx, vmid: string, verbose: boolean): void {
  statusCommand(ctx, 'lxc', vmid, verbose, (config, _rt, running, g) => {
    const rootfs = config.main.props.rootfs ?? '';
    const maxdisk = diskSizeOption(rootfs) ?? 4 * 1024 ** 3;
    return {
      cpus: Number(config.main.props.cores ?? ctx.host.cpus),
      disk: running ? Math.floor(maxdisk / 8) : 0,
      diskread: 0,
      diskwrite: 0,
      maxdisk,
      maxmem: Number(config.main.props.memory ?? 512) * 1024 ** 2,
      maxswap: Number(config.main.props.swap ?? 512) * 1024 ** 2,
      mem: running ? 64 * 1024 ** 2 : 0,
      name: (config.main.props.hostname ?? `CT${vmid}`).replace(/\s/g, ''),
      netin: 0,
      netout: 0,
      status: running ? 'running' : 'stopped',
      swap: 0,
      type: 'lxc',
      uptime: running && g.startedAt ? Math.floor((Date.now() - g.startedAt) / 1000) : 0,
      vmid: Number(vmid),
    };
  });
}
