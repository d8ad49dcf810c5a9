// The AppArmor files a fresh Proxmox VE 8 node has (Debian's apparmor
// package, and the lxc abstractions pve-container's lxc-pve ships), cut down
// to what profiles for containers include: written under the host root when
// missing, so the simulated apparmor_parser resolves includes as the real
// one does on a node.

import fs from 'node:fs';
import path from 'node:path';

import { onHostRoot } from './context.mts';

const PID = '{[1-9],[1-9][0-9],[1-9][0-9][0-9],[1-9][0-9][0-9][0-9],[1-9][0-9][0-9][0-9][0-9],[1-9][0-9][0-9][0-9][0-9][0-9],[1-4][0-9][0-9][0-9][0-9][0-9][0-9]}';

/** Debian's tunables/home (apparmor 3.0.8). */
export const STOCK_TUNABLES_HOME = `# ------------------------------------------------------------------
#  tunables/home of the apparmor package (the definitions as shipped;
#  the comments are the simulator's own).
# ------------------------------------------------------------------

# @{HOME}: every user's home directory, for rules about "the" home.
@{HOME}=@{HOMEDIRS}/*/ /root/

# @{HOMEDIRS}: the directories that hold home directories.
@{HOMEDIRS}=/home/

# Site-specific additions to @{HOMEDIRS} go in tunables/home.d.
include <tunables/home.d>
`;

const FILES: Record<string, string> = {
  'tunables/global': '# Debian: tunables every profile includes\ninclude <tunables/home>\ninclude <tunables/multiarch>\ninclude <tunables/proc>\ninclude <tunables/kernelvars>\ninclude <tunables/run>\ninclude <tunables/etc>\n',
  'tunables/home': STOCK_TUNABLES_HOME,
  'tunables/home.d/site.local': '# This file is auto-generated. It is recommended you update it using:\n# $ sudo dpkg-reconfigure apparmor\n#\n# The following is a space-separated list of where additional user home\n# directories are stored, each must have a trailing \'/\'. Directories added\n# here are appended to @{HOMEDIRS}.  See tunables/home for details.\n#@{HOMEDIRS}+=\n',
  'tunables/multiarch': '@{multiarch}=*-linux-gnu*\ninclude <tunables/multiarch.d>\n',
  'tunables/multiarch.d/site.local': '# Site-specific additions and overrides for \'multiarch\'\n',
  'tunables/proc': '@{PROC}=/proc/\n',
  'tunables/kernelvars': `@{pid}=${PID}\n@{tid}=@{pid}\n@{pids}=@{pid}\n@{sys}=/sys/\n`,
  'tunables/run': '@{run}=/run/ /var/run/\n',
  'tunables/etc': '@{etc_ro}=/etc/ /usr/etc/\n@{etc_rw}=/etc/\ninclude if exists <tunables/etc.d>\n',
  'abstractions/base': '  # Debian: what every program needs\n  /etc/ld.so.cache r,\n  /{usr/,}lib{,32,64}/** mr,\n  /dev/null rw,\n  @{PROC}/@{pid}/maps r,\n',
  'abstractions/lxc/container-base': '  # lxc-pve: the base of container profiles\n  network,\n  capability,\n  file,\n  umount,\n  dbus,\n  signal,\n  ptrace,\n  unix,\n  deny @{PROC}/sysrq-trigger rwklx,\n  mount fstype=proc -> /proc/,\n',
  'abstractions/lxc/start-container': '  # lxc-pve: what starting a container needs\n  capability,\n  file,\n  mount,\n  pivot_root,\n  signal,\n  ptrace,\n  change_profile -> lxc-*,\n',
};

const APPARMOR_UNIT = `[Unit]
Description=Load AppArmor profiles
DefaultDependencies=no
Before=sysinit.target
After=local-fs.target
After=systemd-journald-audit.socket
RequiresMountsFor=/var/cache/apparmor
AssertPathIsReadWrite=/sys/kernel/security/apparmor/.load
ConditionSecurity=apparmor

[Service]
Type=oneshot
ExecStart=/lib/apparmor/apparmor.systemd reload
ExecReload=/lib/apparmor/apparmor.systemd reload
RemainAfterExit=yes
TimeoutSec=0

[Install]
WantedBy=sysinit.target
`;

/** Write the stock files that are missing (a node never lacks them; a test may have removed some on purpose only after this). */
export function ensureApparmorTree(hostRoot: string): void {
  for (const [rel, text] of Object.entries(FILES)) {
    const file = onHostRoot(hostRoot, `/etc/apparmor.d/${rel}`);
    if (fs.existsSync(file)) continue;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text, { mode: 0o644 });
  }
  const unit = onHostRoot(hostRoot, '/lib/systemd/system/apparmor.service');
  if (!fs.existsSync(unit)) {
    fs.mkdirSync(path.dirname(unit), { recursive: true });
    fs.writeFileSync(unit, APPARMOR_UNIT, { mode: 0o644 });
  }
}
