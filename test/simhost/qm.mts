// The simulated `qm`, after qemu-server (PVE::API2::Qemu, PVE::CLI::qm,
// PVE::QemuServer::Agent). A VM has a config file, a run state, disks on
// the storages, a file tree for the guest agent to act on, and a guest
// agent that answers once the VM has been up for agent_delay_ms.
//
// The commands live in qm/ (schema, status, disks, create-clone, set,
// lifecycle, agent, cloudinit); what pct does the same way is in guest-common/.

import { parseCommand } from './args.mts';
import type { Ctx } from './cli.mts';
import { mutateGuest } from './guest-common/config-edits.mts';
import { delsnapshotCommand, listsnapshotCommand, rollbackCommand, snapshotCommand } from './guest-common/snapshots.mts';
import { guestConfigText, loadGuest } from './guests.mts';
import { agentDelayMs } from './inject.mts';
import { execStatus, guestCmd, guestExec } from './qm/agent.mts';
import { cloudinitDump } from './qm/cloudinit.mts';
import { clone, create } from './qm/create-clone.mts';
import { importDisk, resize } from './qm/disks.mts';
import { destroy, reboot, start, stop, template } from './qm/lifecycle.mts';
import { resolveCommand, specs } from './qm/schema.mts';
import { set } from './qm/set.mts';
import { list, status } from './qm/status.mts';
import './programs/index.mts';

export { perlJson } from './qm/agent.mts';

export function runQm(ctx: Ctx): void {
  const { command, rest } = resolveCommand(ctx);
  const p = parseCommand(specs[command]!, rest);
  const vmid = p.args.vmid!;
  switch (command) {
    case 'list':
      return list(ctx);
    case 'status':
      ctx.begin();
      return status(ctx, vmid, p.opts.verbose === '1');
    case 'config':
      ctx.begin();
      return ctx.out(guestConfigText(ctx, 'qemu', vmid, p.opts.snapshot, p.opts.current === '1'));
    case 'create':
      return create(ctx, vmid, p.opts, p.order);
    case 'clone':
      return clone(ctx, vmid, p.args.newid!, p.opts);
    case 'set':
      return set(ctx, vmid, p.opts, p.order);
    case 'start':
      return start(ctx, vmid, p.opts.skiplock === '1');
    case 'stop':
    case 'shutdown':
      return stop(ctx, vmid);
    case 'reboot':
      return reboot(ctx, vmid);
    case 'destroy':
      return destroy(ctx, vmid, p.opts);
    case 'template':
      return template(ctx, vmid);
    case 'snapshot':
      return snapshotCommand(ctx, 'qemu', vmid, p.args.snapname!, p.opts.description, ['current', 'pending']);
    case 'listsnapshot':
      return listsnapshotCommand(ctx, 'qemu', vmid);
    case 'delsnapshot':
      return delsnapshotCommand(ctx, 'qemu', vmid, p.args.snapname!, p.opts.force === '1');
    case 'rollback':
      return rollbackCommand(ctx, 'qemu', vmid, p.args.snapname!, p.opts.start === '1', agentDelayMs(ctx.injection, vmid));
    case 'unlock':
      return mutateGuest(ctx, 'qemu', vmid, false, (_rt, config) => void delete config.main.props.lock);
    case 'disk import':
      return importDisk(ctx, vmid, p.args.source!, p.args.storage!, p.opts.format);
    case 'disk resize':
      return resize(ctx, vmid, p.args.disk!, p.args.size!);
    case 'guest cmd':
      return guestCmd(ctx, vmid, p.args.command!);
    case 'guest exec':
      return guestExec(ctx, vmid, p.extra, p.opts);
    case 'guest exec-status':
      return execStatus(ctx, vmid, p.args.pid!);
    case 'cloudinit update':
      ctx.begin([{ kind: 'qemu', vmid }]);
      loadGuest(ctx, 'qemu', vmid);
      return;
    case 'cloudinit dump':
      ctx.begin();
      return cloudinitDump(ctx, vmid, p.args.type!);
  }
}
