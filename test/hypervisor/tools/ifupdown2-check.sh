#!/usr/bin/env bash
# Check an interfaces(5) file with the real ifupdown2 parser, without
# installing ifupdown2 (its Debian package replaces ifupdown and restarts
# networking): the .deb's files extracted under <project>/.tools/ifupdown2 by
#   apt-get download ifupdown2 && dpkg-deb -x ifupdown2_*.deb .tools/ifupdown2
# Only the parser and the addons' attribute lists are used: no root, no
# netlink, nothing on the host changes.
# Usage: ifupdown2-check.sh FILE    exit 0 clean, 1 errors/warnings (on stderr), 2 no tree/python3
set -euo pipefail
here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
tree="${IFUPDOWN2_TREE:-$here/../../../.tools/ifupdown2}"
[ $# -eq 1 ] || { echo "usage: $0 FILE" >&2; exit 2; }
[ -f "$tree/usr/share/ifupdown2/ifupdown/networkinterfaces.py" ] || { echo "ifupdown2 tree not found under $tree" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 2; }
exec python3 "$here/ifupdown2-check.py" "$tree" "$1"
