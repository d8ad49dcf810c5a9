// The simulated `wipefs` (util-linux 2.38).
//   wipefs [-J] <dev>…      lists the signatures libblkid sees (read-only open)
//   wipefs -a [-n] <dev>…   erases them all (-n: says so, changes nothing)
// Erasing opens the device O_RDWR|O_EXCL unless --force, even with --no-act,
// so a device with something mounted on or below it, device-mapper volumes
// on it, or an imported pool on it fails as the kernel makes it fail:
// "wipefs: error: <dev>: probing initialization failed: Device or resource
// busy" (exit 1). A path that is no device fails the same way with "No such
// file or directory". Erasing a partition table makes the kernel re-read it:
// the partitions are gone (their own signatures stay on the platter, out of
// sight). Each erase prints util-linux's line:
//   <dev>: 8 bytes were erased at offset 0x00000200 (gpt): 45 46 49 20 50 41 52 54

import type { Ctx } from '../cli.mts';
import { loadRuntime, ToolExit, withStateLock } from '../state.mts';
import { busyReason, loadDisks, locate, saveDisks, signaturesOf, type Signature } from './model.mts';
import { parseOptions } from './opts.mts';

function hex(offset: number, width = 8): string {
  return `0x${offset.toString(16).padStart(width, '0')}`;
}

function listing(name: string, signatures: Signature[], json: boolean): string {
  if (json) {
    return JSON.stringify({ signatures: signatures.map((s) => ({ device: name, offset: hex(s.offset, 0), type: s.type, uuid: s.uuid ?? null, label: s.label ?? null })) }, null, 3);
  }
  const rows = [['DEVICE', 'OFFSET', 'TYPE', 'UUID', 'LABEL'], ...signatures.map((s) => [name, hex(s.offset, 0), s.type, s.uuid ?? '', s.label ?? ''])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join(' ').trimEnd()}\n`).join('');
}

export function runWipefs(ctx: Ctx): void {
  const parsed = parseOptions('wipefs', ctx.argv, [
    { short: 'a', long: 'all' },
    { short: 'n', long: 'no-act' },
    { short: 'f', long: 'force' },
    { short: 'q', long: 'quiet' },
    { short: 'J', long: 'json' },
    { short: 'b', long: 'backup' },
    { short: 'o', long: 'offset', value: true },
    { short: 't', long: 'types', value: true },
  ]);
  if (parsed.operands.length === 0) throw new ToolExit(1, 'wipefs: no device specified\nTry \'wipefs --help\' for more information.\n');
  for (const unsupported of ['offset', 'types', 'backup']) {
    if (parsed.seen.has(unsupported)) throw new ToolExit(2, `simhost: 'wipefs --${unsupported}' is not simulated\n`);
  }
  ctx.begin();
  const erase = parsed.seen.has('all');
  const noAct = parsed.seen.has('no-act');
  const force = parsed.seen.has('force');
  const quiet = parsed.seen.has('quiet');
  // Devices are worked on in order: a failure leaves the earlier ones erased, as with the real tool.
  let failure: ToolExit | undefined;
  withStateLock(ctx.root, () => {
    const state = loadDisks(ctx.root);
    const rt = loadRuntime(ctx.root);
    for (const dev of parsed.operands) {
      const found = locate(state, dev);
      if (!found) {
        failure = new ToolExit(1, `wipefs: error: ${dev}: probing initialization failed: No such file or directory\n`);
        break;
      }
      const signatures = signaturesOf(found.node);
      if (!erase) {
        if (signatures.length > 0) ctx.out(listing(found.node.name, signatures, parsed.seen.has('json')));
        continue;
      }
      if (busyReason(state, rt, found) !== undefined) {
        failure = force
          ? new ToolExit(2, `simhost: 'wipefs --force' on a device in use is not simulated\n`)
          : new ToolExit(1, `wipefs: error: ${dev}: probing initialization failed: Device or resource busy\n`);
        break;
      }
      if (!quiet) {
        for (const s of signatures) {
          const bytes = s.magic.split(' ').length;
          ctx.out(`${dev}: ${bytes} ${bytes === 1 ? 'byte was' : 'bytes were'} erased at offset ${hex(s.offset)} (${s.type}): ${s.magic}\n`);
        }
      }
      if (noAct) continue;
      const node = found.node;
      const hadTable = node.pttype !== undefined;
      if (hadTable && !quiet) ctx.out(`${dev}: calling ioctl to re-read partition table: Success\n`);
      delete node.fstype;
      delete node.label;
      delete node.uuid;
      if (hadTable) {
        delete node.pttype;
        delete node.ptuuid;
        delete node.children;
      }
    }
    if (erase && !noAct) saveDisks(ctx.root, state);
  });
  if (failure) throw failure;
}
