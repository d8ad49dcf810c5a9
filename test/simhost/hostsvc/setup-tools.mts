// The host tools that `phoenix setup` meets on a Proxmox node, each routed to
// the hostsvc/ module that answers it (loaded on first use).

import { registerHostTools } from '../hostsvc.mts';

registerHostTools({
  // the network: iproute2 and ifupdown2
  ip: async () => (await import('./network.mts')).runIp,
  ifreload: async () => (await import('./network.mts')).runIfreload,
  // NFS
  exportfs: async () => (await import('./nfs.mts')).runExportfs,
  showmount: async () => (await import('./nfs.mts')).runShowmount,
  // accounts: shadow-utils, Proxmox's user manager, Samba's password database
  useradd: async () => (await import('./accounts.mts')).runUseradd,
  usermod: async () => (await import('./accounts.mts')).runUsermod,
  groupadd: async () => (await import('./accounts.mts')).runGroupadd,
  chpasswd: async () => (await import('./accounts.mts')).runChpasswd,
  pveum: async () => (await import('./pveum.mts')).runPveum,
  smbpasswd: async () => (await import('./samba.mts')).runSmbpasswd,
  pdbedit: async () => (await import('./samba.mts')).runPdbedit,
  // the kernel, its modules and the GPU
  lspci: async () => (await import('./kernel.mts')).runLspci,
  'nvidia-smi': async () => (await import('./kernel.mts')).runNvidiaSmi,
  'nvidia-runfile': async () => (await import('./kernel.mts')).runNvidiaRunfile,
  modprobe: async () => (await import('./kernel.mts')).runModprobe,
  rmmod: async () => (await import('./kernel.mts')).runRmmod,
  depmod: async () => (await import('./kernel.mts')).runDepmod,
  'update-grub': async () => (await import('./kernel.mts')).runUpdateGrub,
  'update-initramfs': async () => (await import('./kernel.mts')).runUpdateInitramfs,
  'proxmox-boot-tool': async () => (await import('./kernel.mts')).runProxmoxBootTool,
  apparmor_parser: async () => (await import('./apparmor.mts')).runApparmorParser,
  // the node itself: time, name, downloads, images
  timedatectl: async () => (await import('./node.mts')).runTimedatectl,
  hostnamectl: async () => (await import('./node.mts')).runHostnamectl,
  curl: async () => (await import('./node.mts')).runCurl,
  'virt-customize': async () => (await import('./node.mts')).runVirtCustomize,
});
