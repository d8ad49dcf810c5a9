// `qm cloudinit dump`: what the cloud-init drive would hold.

import type { Ctx } from '../cli.mts';
import { loadGuest } from '../guests.mts';
import { parsePropertyString, type GuestConfig } from '../pveconf.mts';

export function cloudinitDump(ctx: Ctx, vmid: string, type: string): void {
  const config = loadGuest(ctx, 'qemu', vmid);
  const props = config.main.props;
  const name = props.name ?? `VM${vmid}`;
  if (type === 'user') {
    let out = `#cloud-config\nhostname: ${name}\nmanage_etc_hosts: true\nfqdn: ${name}${props.searchdomain ? `.${props.searchdomain}` : ''}\n`;
    if (props.ciuser) out += `user: ${props.ciuser}\n`;
    out += `chpasswd:\n  expire: False\nusers:\n  - default\npackage_upgrade: ${props.ciupgrade === '0' ? 'false' : 'true'}\n`;
    ctx.out(out);
  } else if (type === 'network') {
    const ip = parsePropertyString(props.ipconfig0 ?? 'ip=dhcp');
    let out = 'version: 1\nconfig:\n    - type: physical\n      name: eth0\n      subnets:\n';
    out += ip.ip === 'dhcp' || !ip.ip ? '      - type: dhcp4\n' : `      - type: static\n        address: '${ip.ip}'\n${ip.gw ? `        gateway: '${ip.gw}'\n` : ''}`;
    if (props.nameserver) out += `    - type: nameserver\n      address:\n      - '${props.nameserver}'\n`;
    ctx.out(out);
  } else {
    ctx.out(`instance-id: ${cloudinitInstanceId(config)}\n`);
  }
}

function cloudinitInstanceId(config: GuestConfig): string {
  // A stable stand-in for the digest PVE derives from the cloud-init settings.
  const text = Object.entries(config.main.props).filter(([k]) => /^(ci|ipconfig|nameserver|searchdomain|sshkeys)/.test(k)).map(([k, v]) => `${k}=${v}`).join(';');
  let h = 0;
  for (const c of text) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h.toString(16).padStart(8, '0');
}
