// The simulated `pct`. Messages, refusals and exit codes follow
// pve-container (PVE::API2::LXC*, PVE::CLI::pct) and pve-guest-common;
// where a command runs as a task on PVE the failure is exit 255 with the
// message on stderr, config-file lookups outside a task exit 2 (errno).
//
// The commands live in pct/ (schema, status, create, clone-destroy, set,
// lifecycle, guest-files); what qm does the same way is in guest-common/.

import { parseCommand } from './args.mts';
import type { Ctx } from './cli.mts';
import { mutateGuest } from './guest-common/config-edits.mts';
import { rebootCommand } from './guest-common/run-state.mts';
import { delsnapshotCommand, listsnapshotCommand, rollbackCommand, snapshotCommand } from './guest-common/snapshots.mts';
import { guestConfigText } from './guests.mts';
import { clone, destroy, template } from './pct/clone-destroy.mts';
import { create } from './pct/create.mts';
import { exec, pull, push } from './pct/guest-files.mts';
import { resize, start, stop } from './pct/lifecycle.mts';
import { NOT_SIMULATED, specs } from './pct/schema.mts';
import { set } from './pct/set.mts';
import { list, status } from './pct/status.mts';
import './programs/index.mts';

export { removeStub } from './guest-common/config-edits.mts';
export { readsStdin } from './guest-common/exec.mts';
export { freeGuestVolumes } from './guest-common/volumes.mts';

export function runPct(ctx: Ctx): void {
  const verb = ctx.verb(ctx.argv[0], Object.keys(specs), NOT_SIMULATED);
  const p = parseCommand(specs[verb]!, ctx.argv.slice(1));
  const vmid = p.args.vmid!;
  switch (verb) {
    case 'list':
      return list(ctx);
    case 'status':
      ctx.begin();
      return status(ctx, vmid, p.opts.verbose === '1');
    case 'config':
      ctx.begin();
      return ctx.out(guestConfigText(ctx, 'lxc', vmid, p.opts.snapshot, p.opts.current === '1'));
    case 'create':
      return create(ctx, vmid, p.args.ostemplate!, p.opts, p.order);
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
      return rebootCommand(ctx, 'lxc', vmid);
    case 'destroy':
      return destroy(ctx, vmid, p.opts);
    case 'template':
      return template(ctx, vmid);
    case 'resize':
      return resize(ctx, vmid, p.args.disk!, p.args.size!);
    case 'snapshot':
      return snapshotCommand(ctx, 'lxc', vmid, p.args.snapname!, p.opts.description, ['current', 'vzdump']);
    case 'listsnapshot':
      return listsnapshotCommand(ctx, 'lxc', vmid);
    case 'delsnapshot':
      return delsnapshotCommand(ctx, 'lxc', vmid, p.args.snapname!, p.opts.force === '1');
    case 'rollback':
      return rollbackCommand(ctx, 'lxc', vmid, p.args.snapname!, p.opts.start === '1');
    case 'unlock':
      return mutateGuest(ctx, 'lxc', vmid, false, (_rt, config) => void delete config.main.props.lock);
    case 'exec':
      return exec(ctx, vmid, p.extra);
    case 'push':
      return push(ctx, vmid, p.args.file!, p.args.destination!, p.opts);
    case 'pull':
      return pull(ctx, vmid, p.args.path!, p.args.destination!, p.opts);
  }
}
