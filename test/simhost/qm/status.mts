// `qm list` and `qm status`: qemu-server's columns and status fields.

import type { Ctx } from '../cli.mts';
import { statusCommand } from '../guest-common/run-state.mts';
import { diskSizeOption, isRunning } from '../guests.mts';
import { listGuestIds, readConfigFile, type GuestConfig } from '../pveconf.mts';
import { volumeSize } from '../storage.mts';
import { loadRuntime, type Runtime } from '../state.mts';

function bootDiskSize(rt: Runtime, config: GuestConfig): number {
  const order = /order=([^,]+)/.exec(config.main.props.boot ?? '')?.[1]?.split(';') ?? [];
  const candidates = [...order, config.main.props.bootdisk ?? '', 'scsi0', 'virtio0', 'sata0', 'ide0'];
  for (const key of candidates) {
    const value = config.main.props[key];
    if (!value || /media=cdrom/.test(value)) continue;
    return diskSizeOption(value) ?? volumeSize(rt, value.split(',')[0]!) ?? 0;
  }
  return 0;
}

function memoryMb(config: GuestConfig): number {
  return Number((config.main.props.memory ?? '512').replace('current=', ''));
}

export function list(ctx: Ctx): void {
  ctx.begin();
  const rt = loadRuntime(ctx.root);
  const ids = listGuestIds(ctx.root, 'qemu');
  if (ids.length === 0) return;
  let out = `${'VMID'.padStart(10)} ${'NAME'.padEnd(20)} ${'STATUS'.padEnd(10)} ${'MEM(MB)'.padEnd(10)} ${'BOOTDISK(GB)'.padStart(12)} ${'PID'.padEnd(10)}\n`;
  for (const id of ids) {
    const config = readConfigFile(ctx.root, 'qemu', id);
    if (!config) continue;
    const running = isRunning(rt, id, ctx.root, 'qemu');
    const name = config.main.props.name ?? `VM ${id}`;
    const disk = (bootDiskSize(rt, config) / 1024 ** 3).toFixed(2);
    out += `${id.padStart(10)} ${name.padEnd(20)} ${(running ? 'running' : 'stopped').padEnd(10)} ${String(memoryMb(config)).padEnd(10)} ${disk.padStart(12)} ${String(running ? rt.guests[id]?.pid ?? 0 : 0).padEnd(10)}\n`;
  }
  ctx.out(out);
}

export function status(ctx: Ctx, vmid: string, verbose: boolean): void {
  statusCommand(ctx, 'qemu', vmid, verbose, (config, rt, running, g) => {
    const stat: Record<string, string | number> = {
      cpus: Number(config.main.props.cores ?? 1) * Number(config.main.props.sockets ?? 1),
      disk: 0,
      diskread: 0,
      diskwrite: 0,
      maxdisk: bootDiskSize(rt, config),
      maxmem: memoryMb(config) * 1024 ** 2,
      mem: running ? 256 * 1024 ** 2 : 0,
      name: config.main.props.name ?? `VM ${vmid}`,
      netin: 0,
      netout: 0,
      qmpstatus: running ? 'running' : 'stopped',
      status: running ? 'running' : 'stopped',
      uptime: running && g.startedAt ? Math.floor((Date.now() - g.startedAt) / 1000) : 0,
      vmid: Number(vmid),
    };
    if (config.main.props.agent) stat.agent = 1;
    return stat;
  });
}
