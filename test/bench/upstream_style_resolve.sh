#!/usr/bin/env bash
# Baseline for `make bench`: the configuration reads and the dependency walk
# the bash phoenix-cli performs before `create <target>` calls a manager
# (config paths from the hypervisor manifest, a graph of every guest's clone
# source and dependencies, a depth-first sort from the targets): one jq
# process per lookup, a status probe per node. Written for the benchmark; it
# is not the upstream code.
set -eo pipefail
hv="${HYPERVISOR_CONFIG_FILE:?}"
lxc=$(jq -r '.core_paths.lxc_config_file // empty' "$hv"); lxc="${LXC_CONFIG_FILE:-$lxc}"
vm=$(jq -r '.core_paths.vm_config_file // empty' "$hv"); vm="${VM_CONFIG_FILE:-$vm}"
[ "${1:-}" = "--help" ] && { echo "Usage: phoenix <verb> [targets...]"; exit 0; }

declare -A edges
for id in $(jq -r '.lxc_configs | keys[]' "$lxc"); do
  clone=$(jq -r --arg id "$id" '.lxc_configs[$id].clone_from_ctid // empty' "$lxc")
  deps=$(jq -r --arg id "$id" '.lxc_configs[$id].dependencies[]?' "$lxc")
  edges[$id]="$clone $deps"
done
for id in $(jq -r '.vms[].vmid' "$vm"); do
  clone=$(jq -r --argjson id "$id" '.vms[] | select(.vmid == $id) | .clone_from_vmid // empty' "$vm")
  deps=$(jq -r --argjson id "$id" '.vms[] | select(.vmid == $id) | .dependencies[]?' "$vm")
  edges[$id]="$clone $deps"
done

declare -A visited onstack
order=()
visit() {
  local n=$1
  visited[$n]=1; onstack[$n]=1
  local e
  for e in ${edges[$n]:-}; do
    if [ -n "${onstack[$e]:-}" ]; then echo "Cycle detected involving '$e'" >&2; exit 1; fi
    [ -n "${visited[$e]:-}" ] || visit "$e"
  done
  unset "onstack[$n]"
  order+=("$n")
}
for t in "$@"; do [ -n "${visited[$t]:-}" ] || visit "$t"; done

for n in "${order[@]}"; do
  if jq -e --arg id "$n" '.lxc_configs[$id]' "$lxc" >/dev/null 2>&1; then
    pct status "$n" >/dev/null 2>&1 || true
  elif [ -n "$(jq -r --argjson id "$n" '.vms[] | select(.vmid == $id) | .vmid' "$vm" 2>/dev/null)" ]; then
    qm status "$n" >/dev/null 2>&1 || true
  fi
  echo "would run manager create $n"
done
