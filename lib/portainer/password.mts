// The Portainer admin password: read from portainer_api.admin_password_file
// (a host file, mode 0600), created there with a random value when it does not
// exist yet. The bash kept it in clear text in the committed hypervisor config
// and put it on a command line and in the log; here it only ever
// travels in an HTTPS request body, and it is registered as a secret the moment
// it is read, so no log line or recorded command can show it.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { PhoenixConfig } from '../config/load.mts';
import type { PhoenixOptions } from '../core/env.mts';
import { ConfigError } from '../core/errors.mts';
import { pathFormProblem, systemTreeOf } from '../config/paths.mts';
import { writeFileAtomic } from '../core/fs.mts';
import { info, warn } from '../core/log.mts';
import { addSecret } from '../core/redact.mts';
import { isDryRun } from '../core/context.mts';

/** Where the password lives when the hypervisor config names no file. */
export const DEFAULT_ADMIN_PASSWORD_FILE = '/etc/phoenix/secrets/portainer_admin_password';
/** Portainer refuses admin passwords shorter than 12 characters. */
export const MIN_PASSWORD_LENGTH = 12;

export interface AdminCredentials {
  user: string;
  /** Undefined only in a dry-run that would create the file. */
  password: string | undefined;
  /** The file as the operator knows it (manifest path) and where it is read here. */
  file: string;
  hostFile: string;
  created: boolean;
}

export function hostPath(options: PhoenixOptions, file: string): string {
  return options.hostRoot === '/' ? file : path.join(options.hostRoot, file);
}

export function adminCredentials(config: PhoenixConfig, options: PhoenixOptions): AdminCredentials {
  const api = config.hypervisor.portainer_api;
  const user = api?.admin_user ?? 'admin';
  const file = api?.admin_password_file ?? DEFAULT_ADMIN_PASSWORD_FILE;
  // validateReferences refuses these first; kept here so no caller can read or
  // create the password outside the host root or in a system file.
  const problem = pathFormProblem(file, true) ?? (systemTreeOf(path.posix.normalize(file)) ? `${file} is in a system directory of the host` : undefined);
  if (problem) throw new ConfigError(config.paths.hypervisor, '/portainer_api/admin_password_file', problem);
  const hostFile = hostPath(options, file);
  let text: string | undefined;
  try {
    const stat = fs.statSync(hostFile);
    if ((stat.mode & 0o077) !== 0) warn(`${file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`);
    text = fs.readFileSync(hostFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    const password = text.replace(/\r?\n$/, '');
    if (password.length < MIN_PASSWORD_LENGTH) {
      throw new ConfigError(hostFile, '', `the Portainer admin password must have at least ${MIN_PASSWORD_LENGTH} characters (Portainer refuses shorter ones)`);
    }
    addSecret(password);
    return { user, password, file, hostFile, created: false };
  }
  if (api?.admin_password) {
    // The upstream format's inline password still works, but is reported by the config warnings.
    addSecret(api.admin_password);
    return { user, password: api.admin_password, file: `${config.paths.hypervisor} (portainer_api.admin_password)`, hostFile: config.paths.hypervisor, created: false };
  }
  if (isDryRun()) {
    info(`DRY-RUN: would create the Portainer admin password file ${file} (mode 600) with a random password`);
    return { user, password: undefined, file, hostFile, created: true };
  }
  const password = crypto.randomBytes(24).toString('base64url');
  addSecret(password);
  writeFileAtomic(hostFile, `${password}\n`, { mode: 0o600, dirMode: 0o700 });
  info(`created the Portainer admin password in ${file} (mode 600); keep it, it is the '${user}' login of the Portainer UI`);
  return { user, password, file, hostFile, created: true };
}
