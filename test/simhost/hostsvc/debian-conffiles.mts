// Conffiles the simulated host's packages install: samba-common's
// /etc/samba/smb.conf and sudo's /etc/sudoers and /etc/sudoers.d/README.
// The settings, sections and comment styles (`#` and `;`) are those of
// Debian 12's files, so a test sees an operator's smb.conf and sudoers of
// the real shape; the comment wording is the simulator's own.

export const DEBIAN_SMB_CONF = `#
# Samba configuration of a Debian node, as the samba-common package installs it.
# smb.conf(5) explains every parameter; run \`testparm\` after an edit.
#
# Lines starting with ';' are settings left commented out; '#' lines are notes.

#======================= Global Settings =======================

[global]

## Browsing / identification
   workgroup = WORKGROUP

;   interfaces = 127.0.0.0/8 eth0
;   bind interfaces only = yes

#### Debugging / accounting
   log file = /var/log/samba/log.%m
   max log size = 1000
   logging = file
   panic action = /usr/share/samba/panic-action %d

####### Authentication
   server role = standalone server
   obey pam restrictions = yes
   unix password sync = yes
   passwd program = /usr/bin/passwd %u
   passwd chat = *Enter\\snew\\s*\\spassword:* %n\\n *Retype\\snew\\s*\\spassword:* %n\\n *password\\supdated\\ssuccessfully* .
   pam password change = yes
   map to guest = bad user

############ Misc
;   include = /home/samba/etc/smb.conf.%m
;   idmap config * :              backend = tdb
;   usershare max shares = 100
   usershare allow guests = yes

#======================= Share Definitions =======================

[homes]
   comment = Home Directories
   browseable = no
   read only = yes
   create mask = 0700
   directory mask = 0700
   valid users = %S

;[netlogon]
;   comment = Network Logon Service
;   path = /home/samba/netlogon
;   guest ok = yes
;   read only = yes

[printers]
   comment = All Printers
   browseable = no
   path = /var/tmp
   printable = yes
   guest ok = no
   read only = yes
   create mask = 0700

[print$]
   comment = Printer Drivers
   path = /var/lib/samba/printers
   browseable = yes
   read only = yes
   guest ok = no
;   write list = root, @lpadmin
`;

export const DEBIAN_SUDOERS = `#
# sudo's policy on a Debian node. Edit it with visudo only; local rules
# belong in files under /etc/sudoers.d/, which the last line reads.
#
Defaults	env_reset
Defaults	mail_badpass
Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# A pseudo-terminal for every command run through sudo.
Defaults	use_pty

# Variables members of group sudo may keep (commented out as shipped).
#Defaults:%sudo env_keep += "http_proxy https_proxy ftp_proxy all_proxy no_proxy"
#Defaults:%sudo env_keep += "EDITOR"
#Defaults:%sudo env_keep += "SSH_AGENT_PID SSH_AUTH_SOCK"

# Host alias specification

# User alias specification

# Cmnd alias specification

# User privilege specification
root	ALL=(ALL:ALL) ALL

# Members of group sudo may run any command
%sudo	ALL=(ALL:ALL) ALL

# Files in this directory are read as part of this policy (sudoers(5), "@include"):

@includedir /etc/sudoers.d
`;

export const DEBIAN_SUDOERS_README = `#
# Files here are read by sudo as part of /etc/sudoers (its @includedir line).
# Names that end in '~' or contain a '.' are skipped, so editor backups and
# package leftovers never become policy. Give each file mode 0440 and edit it
# with \`visudo -f\`.
#
`;
