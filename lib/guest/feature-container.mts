// The steps most container features are made of, as plan steps
// (feature-steps.mts) over the container primitives (container.mts): Debian
// packages installed by a guest script, a file that must hold exactly some
// text, a systemd unit's state. Each step's check is a read-only probe run
// in the check pass; its change is the same command the feature always sent
// for it.

import { once } from './feature-plan.mts';
import type { HostStep } from './feature-steps.mts';
import { installedPackages, pushContent, readGuestFile, runGuestScript, serviceState, type ServiceState } from './container.mts';

export { once };

/** dpkg's view of a set of packages, asked once per plan (one `dpkg-query` for the whole list). */
export interface PackageProbe {
  installed(): Promise<Set<string>>;
  /** The packages dpkg does not list as installed, in the order given. */
  missing(): Promise<string[]>;
}

export function packageProbe(ctid: string, packages: readonly string[]): PackageProbe {
  const installed = once(() => installedPackages(ctid, packages));
  return {
    installed,
    missing: async () => {
      const found = await installed();
      return packages.filter((p) => !found.has(p));
    },
  };
}

export interface PackagesStepOptions {
  id: string;
  feature: string;
  probe: PackageProbe;
  /** The guest script that installs the packages it is given (lib/features/lxc/guest/). */
  script: string;
  /** Its label in an error; by default "installing <packages>". */
  label?: (missing: readonly string[]) => string;
  title?: string;
  timeoutMs?: number;
  after?: readonly string[];
}

/** The packages of `probe` installed: the missing ones, and only they, go to one guest script. */
export function packagesStep(ctid: string, options: PackagesStepOptions): HostStep {
  return {
    kind: 'host',
    id: options.id,
    title: options.title ?? `install the missing packages with ${options.script}`,
    check: async () => (await options.probe.missing()).length === 0,
    ...(options.after === undefined ? {} : { after: options.after }),
    apply: async () => {
      const missing = await options.probe.missing();
      const label = options.label ? options.label(missing) : `installing ${missing.join(' ')}`;
      await runGuestScript(ctid, options.script, missing, { feature: options.feature, label, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) });
      return [`installed ${missing.join(' ')}`];
    },
  };
}

export interface FileStepOptions {
  id: string;
  feature: string;
  path: string;
  content: () => string;
  /** Octal mode in the container, e.g. '0644'. */
  perms: string;
  /** Its label in an error, e.g. "writing traefik.service". */
  label: string;
  /** Create the directory first (pct push does not). */
  mkdir?: boolean;
  title?: string;
}

export interface FileStepWithState extends HostStep {
  /** The file's text in the container as the check found it (undefined: absent or unreadable). */
  current(): Promise<string | undefined>;
  /** Whether the check found the file as wanted. */
  inPlace(): Promise<boolean>;
}

/** A file in the container that holds exactly `content`: read with `cat`, pushed (with its mode) only when it differs. */
export function guestFileStep(ctid: string, options: FileStepOptions): FileStepWithState {
  const current = once(() => readGuestFile(ctid, options.path));
  const inPlace = async () => (await current()) === options.content();
  return {
    kind: 'host',
    id: options.id,
    title: options.title ?? `write ${options.path}`,
    current,
    inPlace,
    check: inPlace,
    apply: async () => {
      const before = await current();
      await pushContent(ctid, options.path, options.content(), { feature: options.feature, label: options.label, perms: options.perms, ...(options.mkdir ? { mkdir: true } : {}) });
      return [`${before === undefined ? 'wrote' : 'updated'} ${options.path}`];
    },
  };
}

/** A systemd unit's state, asked once per plan (one `systemctl show`). */
export function serviceProbe(ctid: string, unit: string): () => Promise<ServiceState> {
  return once(() => serviceState(ctid, unit));
}
