// provision_cloud_template: a VM template from Ubuntu 24.04's cloud image
// (a manual tool; vm-manager builds its own template 9000).
//
// Idempotent and safe to re-run after any failure:
// - a VM that is already a template: nothing to do;
// - a VM this tool left half-made (a `lock: create`, or its marker in the
//   description and never turned into a template): removed and made again;
//   any other VM under that id is refused, never touched;
// - the image is downloaded once into a cache on the host (not /tmp, which
//   is wiped on reboot), through a temporary name, so a cut download is never
//   taken for the image (lib/hypervisor/download.mts);
// - virt-customize works on a copy, never on the cached download: a failed or
//   interrupted customisation leaves the cache clean, and the copy is removed
//   whatever happens;
// - every qm call is checked (the runner throws on a failure).

import fs from 'node:fs';
import path from 'node:path';
import { isDryRun } from '../core/context.mts';
import { PhoenixError } from '../core/errors.mts';
import { info, warn } from '../core/log.mts';
import { run } from '../core/runner.mts';
import { uniqueSuffix } from '../core/fs.mts';
import type { PhoenixOptions } from '../core/env.mts';
import * as qm from '../pve/qm.mts';
import { isHalfMade, removeHalfMadeGuest } from '../pve/half-made.mts';
import { downloadOnce } from './download.mts';
import { aptInstall, hostFile, packageInstalled } from './host.mts';

export const IMAGE_URL = 'https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img';
export const CACHE_DIR = '/var/cache/phoenix/cloud-images';
export const TEMPLATE_NAME = 'ubuntu-2404-cloud-template';
/** In the VM's description: this VM is the tool's own, so a half-made one may be removed. */
export const MARKER = 'phoenix:provision_cloud_template';
export const GUEST_PACKAGES = ['qemu-guest-agent', 'nfs-common'];

export interface CloudTemplateRequest {
  vmid: string;
  storagePool: string;
  bridge: string;
}

export interface CloudTemplateResult {
  changes: string[];
}

/** The cached download, on this machine. */
export function cachedImage(options: PhoenixOptions): string {
  return hostFile(options, `${CACHE_DIR}/${path.posix.basename(IMAGE_URL)}`);
}

/** The working copies virt-customize changes (one per run; none survive a run). */
export function isWorkingCopy(name: string): boolean {
  return /^\.work-.+\.img$/.test(name);
}

function qcow2(file: string): string | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    fs.readSync(fd, head, 0, 4, 0);
    return head.toString('latin1') === 'QFI\xfb' ? undefined : 'not a qcow2 image (an error page or a cut transfer?)';
  } finally {
    fs.closeSync(fd);
  }
}

/** What is under `vmid` already: done, cleared for a new build, or refused. */
async function existing(vmid: string, changes: string[]): Promise<'template' | 'absent'> {
  const config = await qm.configIfExists(vmid);
  if (config === undefined) return 'absent';
  const values = config.values;
  if (values.template === '1') return 'template';
  if (isHalfMade('qm', values.lock)) {
    await removeHalfMadeGuest('qm', vmid, values.lock!);
    changes.push(`removed VM ${vmid}, left half-made by an interrupted create`);
    return 'absent';
  }
  const ours = (values.description ?? '').includes(MARKER);
  if (!ours) {
    throw new PhoenixError(`VM ${vmid} exists and is not a template (name '${values.name ?? ''}'); it was not made by this tool, so it is left alone`, {
      hint: 'choose a free --vmid, or remove that VM yourself if it is not needed',
    });
  }
  if ((await qm.status(vmid)) === 'running') {
    throw new PhoenixError(`VM ${vmid} is a cloud template this tool never finished, but it is running; it is left alone`, { hint: `stop it (qm stop ${vmid}) or remove it, then run again` });
  }
  warn(`VM ${vmid} is a cloud template an earlier run did not finish (never turned into a template); removing it and making it again`);
  await qm.destroy(vmid, { purge: true, unreferencedDisks: true });
  changes.push(`removed the unfinished VM ${vmid}`);
  return 'absent';
}

export async function provisionCloudTemplate(request: CloudTemplateRequest, options: PhoenixOptions): Promise<CloudTemplateResult> {
  const { vmid, storagePool, bridge } = request;
  const changes: string[] = [];
  if ((await existing(vmid, changes)) === 'template') {
    info(`VM ${vmid} is already a template; nothing to do`);
    return { changes };
  }

  if (!(await packageInstalled('libguestfs-tools'))) {
    await aptInstall(['libguestfs-tools']);
    changes.push('installed libguestfs-tools');
  }

  const image = cachedImage(options);
  if ((await downloadOnce({ url: IMAGE_URL, target: image, timeoutMs: 60 * 60_000, check: qcow2 })) === 'downloaded') {
    changes.push(`downloaded ${IMAGE_URL} to ${CACHE_DIR}`);
  }

  const work = path.join(path.dirname(image), `.work-${vmid}-${uniqueSuffix()}.img`);
  try {
    if (!isDryRun()) {
      removeStaleCopies(path.dirname(image));
      fs.copyFileSync(image, work);
    } else {
      info(`DRY-RUN: would copy ${image} to ${work} for virt-customize`);
    }
    await run({
      cmd: 'virt-customize',
      args: ['-a', work, '--install', GUEST_PACKAGES.join(','), '--run-command', 'systemctl enable qemu-guest-agent'],
      timeoutMs: 30 * 60_000,
    });
    await qm.create(vmid, {
      name: TEMPLATE_NAME,
      memory: 2048,
      net0: `virtio,bridge=${bridge}`,
      scsihw: 'virtio-scsi-pci',
      serial0: 'socket',
      vga: 'serial0',
      agent: 'enabled=1',
      description: `${MARKER} (Ubuntu 24.04 cloud image)`,
    });
    changes.push(`created VM ${vmid} (${TEMPLATE_NAME}) on bridge ${bridge}`);
    await qm.set(vmid, { scsi0: `${storagePool}:0,import-from=${work}` });
    await qm.set(vmid, { ide2: `${storagePool}:cloudinit`, boot: 'order=scsi0' });
    changes.push(`imported the customised image to ${storagePool} as scsi0, added a cloud-init drive`);
    await qm.template(vmid);
    changes.push(`turned VM ${vmid} into a template`);
  } finally {
    fs.rmSync(work, { force: true });
  }
  return { changes };
}

/** Copies a killed run left (never used again; only tidied). */
function removeStaleCopies(dir: string): void {
  for (const name of fs.readdirSync(dir)) if (isWorkingCopy(name)) fs.rmSync(path.join(dir, name), { force: true });
}
