// Checks across the manifests once each is valid on its own: ids that name
// no guest, clone sources and dependencies, cycles, duplicate ids and
// addresses; and the warnings for accepted but unwise content.

import fs from 'node:fs';
import path from 'node:path';
import { completeIdMaps } from './id-maps.mts';
import type { ConfigIssue, ConfigWarning, LxcConfig, PhoenixConfig } from './types.mts';
import { escapePointer } from './json-values.mts';
import { SECRET_NAME } from './schema-check.mts';

export function referenceIssues(config: PhoenixConfig): ConfigIssue[] {
  const { lxc: lxcFile, vm: vmFile } = config.paths;
  const containers = config.lxc.lxc_configs;
  const vms = config.vm.vms;
  const issues: ConfigIssue[] = [];
  const isContainer = (id: string): boolean => Object.hasOwn(containers, id);
  const vmIndex = new Map<string, number>();

  vms.forEach((vm, i) => {
    const id = String(vm.vmid);
    const pointer = `/vms/${i}/vmid`;
    const earlier = vmIndex.get(id);
    if (earlier !== undefined) issues.push({ file: vmFile, pointer, message: `vmid ${id} is already used by /vms/${earlier}` });
    else vmIndex.set(id, i);
    if (isContainer(id)) {
      issues.push({ file: vmFile, pointer, message: `${id} is also a container (${path.basename(lxcFile)} /lxc_configs/${id}); containers and VMs share one id space` });
    }
  });
  const isGuest = (id: string): boolean => isContainer(id) || vmIndex.has(id);
  const checkDependencies = (file: string, base: string, self: string, dependencies: readonly string[] | undefined): void => {
    dependencies?.forEach((dep, j) => {
      const pointer = `${base}/dependencies/${j}`;
      if (dep === self) issues.push({ file, pointer, message: `guest ${self} depends on itself` });
      else if (!isGuest(dep)) issues.push({ file, pointer, message: `dependency ${dep} names no container or VM` });
    });
  };

  for (const id of config.lxcIds()) {
    const ct = containers[id] as LxcConfig;
    const base = `/lxc_configs/${escapePointer(id)}`;
    const source = ct.clone_from_ctid;
    if (source !== undefined) {
      const pointer = `${base}/clone_from_ctid`;
      if (source === id) issues.push({ file: lxcFile, pointer, message: `container ${id} cannot be cloned from itself` });
      else if (vmIndex.has(source)) issues.push({ file: lxcFile, pointer, message: `clone source ${source} is a VM; a container clones a container` });
      else if (!isContainer(source)) issues.push({ file: lxcFile, pointer, message: `clone source ${source} is not defined in lxc_configs` });
    }
    checkDependencies(lxcFile, base, id, ct.dependencies);
    for (const problem of completeIdMaps(ct.id_maps).problems) issues.push({ file: lxcFile, pointer: `${base}/id_maps/${problem.entry}`, message: problem.message });
  }
  vms.forEach((vm, i) => {
    const id = String(vm.vmid);
    const base = `/vms/${i}`;
    if (vm.clone_from_vmid !== undefined) {
      const source = String(vm.clone_from_vmid);
      const pointer = `${base}/clone_from_vmid`;
      if (source === id) issues.push({ file: vmFile, pointer, message: `VM ${id} cannot be cloned from itself` });
      else if (isContainer(source)) issues.push({ file: vmFile, pointer, message: `clone source ${source} is a container; a VM clones a VM` });
      else if (!vmIndex.has(source)) issues.push({ file: vmFile, pointer, message: `clone source ${source} is not defined in vms` });
    }
    checkDependencies(vmFile, base, id, vm.dependencies);
  });

  issues.push(...addressIssues(config));
  issues.push(...cycleIssues(config));

  const { certificates: certFile, stacks: stacksFile, hypervisor: hvFile } = config.paths;
  const certificates = fs.existsSync(certFile) ? config.certificates : undefined;
  certificates?.forEach((entry, i) => {
    if (entry.guest_id === undefined) return;
    const id = String(entry.guest_id);
    const pointer = `/${i}/guest_id`;
    const wanted = entry.guest_type === 'vm' ? vmIndex.has(id) : isContainer(id);
    if (wanted) return;
    const actual = isContainer(id) ? 'a container' : vmIndex.has(id) ? 'a VM' : undefined;
    const message = actual
      ? `guest ${id} is ${actual}, but guest_type is "${entry.guest_type ?? ''}"`
      : `guest ${id} names no ${entry.guest_type === 'vm' ? 'VM' : 'container'}`;
    issues.push({ file: certFile, pointer, message });
  });
  if (fs.existsSync(stacksFile)) {
    const stacks = config.stacks.docker_stacks;
    vms.forEach((vm, i) =>
      vm.docker_stacks?.forEach((name, j) => {
        if (!Object.hasOwn(stacks, name)) {
          issues.push({ file: vmFile, pointer: `/vms/${i}/docker_stacks/${j}`, message: `stack ${JSON.stringify(name)} is not defined in ${path.basename(stacksFile)}` });
        }
      }),
    );
  }
  const clientCert = fs.existsSync(hvFile) ? config.hypervisor.gateway?.client_certificate : undefined;
  if (clientCert !== undefined && certificates && !certificates.some((entry) => entry.common_name === clientCert)) {
    issues.push({ file: hvFile, pointer: '/gateway/client_certificate', message: `no certificate with common_name ${JSON.stringify(clientCert)} in ${path.basename(certFile)}` });
  }
  return issues;
}

/**
 * A clone source or dependency chain that comes back to where it started: no
 * order can create those guests. Reported once per cycle, at the edge that
 * closes it, with the guests in order.
 */
function cycleIssues(config: PhoenixConfig): ConfigIssue[] {
  const edges = new Map<string, Array<{ to: string; file: string; pointer: string }>>();
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id] as LxcConfig;
    const base = `/lxc_configs/${escapePointer(id)}`;
    const list: Array<{ to: string; file: string; pointer: string }> = [];
    if (ct.clone_from_ctid !== undefined) list.push({ to: ct.clone_from_ctid, file: config.paths.lxc, pointer: `${base}/clone_from_ctid` });
    ct.dependencies?.forEach((dep, j) => list.push({ to: dep, file: config.paths.lxc, pointer: `${base}/dependencies/${j}` }));
    edges.set(id, list);
  }
  config.vm.vms.forEach((vm, i) => {
    const list: Array<{ to: string; file: string; pointer: string }> = [];
    if (vm.clone_from_vmid !== undefined) list.push({ to: String(vm.clone_from_vmid), file: config.paths.vm, pointer: `/vms/${i}/clone_from_vmid` });
    vm.dependencies?.forEach((dep, j) => list.push({ to: dep, file: config.paths.vm, pointer: `/vms/${i}/dependencies/${j}` }));
    edges.set(String(vm.vmid), list);
  });
  const issues: ConfigIssue[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  // Iterative, so a long chain of guests cannot exhaust the call stack.
  for (const start of edges.keys()) {
    if (state.has(start)) continue;
    const frames: Array<{ id: string; next: number }> = [{ id: start, next: 0 }];
    state.set(start, 'open');
    stack.push(start);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1] as { id: string; next: number };
      const edge = edges.get(frame.id)?.[frame.next++];
      if (!edge) {
        state.set(frame.id, 'done');
        stack.pop();
        frames.pop();
        continue;
      }
      const seen = edge.to === frame.id ? 'self' : state.get(edge.to);
      if (seen === 'self') continue; // reported as "depends on itself" above
      if (seen === 'open') {
        const cycle = [...stack.slice(stack.indexOf(edge.to)), edge.to];
        issues.push({ file: edge.file, pointer: edge.pointer, message: `dependency cycle: ${cycle.join(' -> ')}; no order can create these guests` });
      } else if (seen === undefined && edges.has(edge.to)) {
        state.set(edge.to, 'open');
        stack.push(edge.to);
        frames.push({ id: edge.to, next: 0 });
      }
    }
  }
  return issues;
}

/** Two guests with one static address or one MAC break each other at the first ARP. */
function addressIssues(config: PhoenixConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const owners = new Map<string, { owner: string; file: string; pointer: string }>();
  const note = (kind: 'address' | 'MAC address', raw: string | undefined, owner: string, file: string, pointer: string): void => {
    if (raw === undefined || raw === 'dhcp' || raw === 'manual') return;
    const value = kind === 'address' ? (raw.split('/')[0] ?? raw) : raw.toUpperCase();
    const key = `${kind}\0${value}`;
    const earlier = owners.get(key);
    if (!earlier) owners.set(key, { owner, file, pointer });
    else if (earlier.owner !== owner) {
      issues.push({ file, pointer, message: `${kind} ${value} is also used by ${earlier.owner} (${path.basename(earlier.file)} ${earlier.pointer})` });
    }
  };
  const lxcFile = config.paths.lxc;
  for (const id of config.lxcIds()) {
    const ct = config.lxc.lxc_configs[id] as LxcConfig;
    const base = `/lxc_configs/${escapePointer(id)}`;
    const owner = `CT ${id}`;
    note('address', ct.network_config.ip, owner, lxcFile, `${base}/network_config/ip`);
    note('address', ct.secondary_network_config?.ip, owner, lxcFile, `${base}/secondary_network_config/ip`);
    note('MAC address', ct.mac_address, owner, lxcFile, `${base}/mac_address`);
    note('MAC address', ct.network_config.hwaddr, owner, lxcFile, `${base}/network_config/hwaddr`);
    note('MAC address', ct.secondary_network_config?.hwaddr, owner, lxcFile, `${base}/secondary_network_config/hwaddr`);
  }
  config.vm.vms.forEach((vm, i) => note('address', vm.network_config?.ip, `VM ${vm.vmid}`, config.paths.vm, `/vms/${i}/network_config/ip`));
  return issues;
}

export function collectWarnings(config: PhoenixConfig): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const { hypervisor: hvFile, stacks: stacksFile } = config.paths;
  const api = fs.existsSync(hvFile) ? config.hypervisor.portainer_api : undefined;
  const samba = fs.existsSync(hvFile) ? config.hypervisor.samba : undefined;
  // A password written into the manifest: the file key, when also given, wins.
  const inline = (pointer: string, password: string | undefined, fileKey: string, fileGiven: boolean, what: string) => {
    if (password === undefined) return;
    warnings.push({
      file: hvFile,
      pointer,
      message: fileGiven
        ? `clear-text password next to ${fileKey}; the file wins, delete the inline value`
        : `${what} password in clear text; put it in a root-only file (mode 0600) named by ${fileKey}`,
    });
  };
  inline('/portainer_api/admin_password', api?.admin_password, 'admin_password_file', api?.admin_password_file !== undefined, 'Portainer admin');
  inline('/samba/password', samba?.password, 'password_file', samba?.password_file !== undefined, 'Samba');
  if (typeof api?.api_key === 'string' && api.api_key !== '') {
    warnings.push({ file: hvFile, pointer: '/portainer_api/api_key', message: 'API key in clear text; name a root-only file in api_key_file instead' });
  }
  if (fs.existsSync(stacksFile)) {
    for (const [stack, body] of Object.entries(config.stacks.docker_stacks)) {
      for (const [envName, environment] of Object.entries(body.environments)) {
        environment.variables?.forEach((variable, i) => {
          if (SECRET_NAME.test(variable.name) && variable.value !== '') {
            warnings.push({
              file: stacksFile,
              pointer: `/docker_stacks/${escapePointer(stack)}/environments/${escapePointer(envName)}/variables/${i}/value`,
              message: `${variable.name} is stored in clear text in the manifest`,
            });
          }
        });
      }
    }
  }
  return warnings;
}
