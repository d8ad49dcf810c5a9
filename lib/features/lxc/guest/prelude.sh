# Phoenix: sent ahead of every feature script run inside a container
# (pct exec <ctid> -- bash -s -- args). Values arrive as positional
# arguments; nothing from a manifest is ever part of this text.
set -Eeuo pipefail
export DEBIAN_FRONTEND=noninteractive
# The host only sees the exit status and stderr: say which command failed.
trap 'rc=$?; printf "phoenix: failed (exit %s): %s\n" "$rc" "$BASH_COMMAND" >&2; exit "$rc"' ERR

# How long apt work waits for another package-manager run (unattended-upgrades,
# cloud-init, an operator) to finish. Such runs are waited for, never killed:
# killing dpkg mid-transaction is how package databases get corrupted (BUG-15).
phoenix_apt_lock_wait=300

phoenix_apt_busy() {
  pgrep -x 'apt|apt-get|aptitude|dpkg|unattended-upgr' >/dev/null 2>&1
}

phoenix_wait_for_apt() {
  local waited=0
  while phoenix_apt_busy; do
    if [ "$waited" -ge "$phoenix_apt_lock_wait" ]; then
      echo "phoenix: the package manager is still busy after ${waited}s; giving up (nothing was killed)" >&2
      return 75
    fi
    sleep 5
    waited=$((waited + 5))
  done
}

# apt-get itself also waits (bounded) for the dpkg lock, for the window
# between the check above and its own start.
apt_get() {
  phoenix_wait_for_apt
  apt-get -o DPkg::Lock::Timeout="$phoenix_apt_lock_wait" -y -q "$@"
}
