#!/usr/bin/env node
// Port of bin/hypervisor_setup/provision_cloud_template.sh (a manual tool,
// not a setup step): a VM template from Ubuntu 24.04's cloud image with the
// guest agent and the NFS client. Idempotent, and safe to run again after
// any failure: lib/hypervisor/cloud-template.mts.

import { runMain, withHostLock } from '../../lib/core/main.mts';
import { defineArgs } from '../../lib/core/args.mts';
import { info } from '../../lib/core/log.mts';
import { requireFlags } from '../../lib/hypervisor/script.mts';
import { reportStep } from '../../lib/hypervisor/step-script.mts';
import { provisionCloudTemplate, TEMPLATE_NAME } from '../../lib/hypervisor/cloud-template.mts';

const USAGE = `Usage: provision_cloud_template.sh --vmid N --storage-pool STORAGE --bridge BRIDGE [--dry-run]

Builds VM template N (${TEMPLATE_NAME}) from Ubuntu 24.04's cloud image
(cached in /var/cache/phoenix/cloud-images), with qemu-guest-agent and
nfs-common installed by virt-customize into a copy of the image. Nothing
happens when VM N is already a template; a VM N this tool left unfinished is
made again; any other VM N is refused.

  --vmid N               the template's VMID (required)
  --storage-pool STORE   Proxmox storage for its disk and cloud-init drive (required)
  --bridge BRIDGE        bridge of its network card, e.g. vmbr0 (required)
  --dry-run              print what would change, change nothing
`;

const ARGS = defineArgs({
  name: 'provision_cloud_template.sh',
  usage: USAGE,
  dryRun: true,
  flags: {
    vmid: { type: 'string', needs: 'a VMID', check: (v) => (/^[1-9]\d{2,8}$/.test(v) ? undefined : `'${v}' is not a VMID (100-999999999)`) },
    'storage-pool': { type: 'string', needs: 'a storage id', check: (v) => (/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? undefined : `'${v}' is not a Proxmox storage id`) },
    bridge: { type: 'string', needs: 'a bridge name', check: (v) => (/^[A-Za-z][A-Za-z0-9_.-]{0,14}$/.test(v) ? undefined : `'${v}' is not a bridge name`) },
  },
});

await runMain(ARGS, async (args, context) => {
  const { vmid, 'storage-pool': storagePool, bridge } = requireFlags(ARGS, args.flags, ['vmid', 'storage-pool', 'bridge']);
  info(`Provisioning cloud template ${vmid}...`);
  const result = await withHostLock(context, () => provisionCloudTemplate({ vmid, storagePool, bridge }, context.options));
  return reportStep(`cloud template ${vmid}`, result, `VM ${vmid} is already a template`);
});
