// The Swarm secret `portainer_admin_password` that the Portainer stack mounts
// and passes to Portainer (--admin-password-file), so Portainer starts with
// its admin already set. Created on the manager from the password file, the
// value on the guest agent's stdin (the bash put it in a `printf` inside a
// logged `bash -c` string). A secret cannot be changed in place and
// Docker shows no value, so an existing one is left alone; --reset-portainer
// removes it with the stack, and the next deploy creates it again.

import { docker, dockerQuery, type GuestTiming } from '../swarm/docker.mts';
import { isDryRun } from '../core/context.mts';
import { info } from '../core/log.mts';

export const ADMIN_SECRET = 'portainer_admin_password';

export async function hasSecret(vmid: string, name: string, timing: GuestTiming): Promise<boolean> {
  const listed = await dockerQuery(vmid, ['secret', 'ls', '--format', '{{.Name}}'], timing);
  return listed.stdout.split('\n').some((line) => line.trim() === name);
}

/** 'created' when the secret was made (or would be, in a dry-run). */
export async function ensureAdminSecret(vmid: string, password: string | undefined, timing: GuestTiming): Promise<'created' | 'unchanged'> {
  if (isDryRun()) {
    info(`DRY-RUN: would create the Swarm secret ${ADMIN_SECRET} on VM ${vmid} from the admin password file unless it exists`);
    return 'unchanged';
  }
  if (await hasSecret(vmid, ADMIN_SECRET, timing)) return 'unchanged';
  if (password === undefined) throw new Error('no admin password to create the Swarm secret from');
  await docker(vmid, ['secret', 'create', ADMIN_SECRET, '-'], timing, { input: password, secrets: [password] });
  info(`created the Swarm secret ${ADMIN_SECRET} on VM ${vmid}`);
  return 'created';
}

export async function removeAdminSecret(vmid: string, timing: GuestTiming): Promise<void> {
  if (isDryRun()) {
    info(`DRY-RUN: would remove the Swarm secret ${ADMIN_SECRET} on VM ${vmid}`);
    return;
  }
  if (!(await hasSecret(vmid, ADMIN_SECRET, timing))) return;
  await docker(vmid, ['secret', 'rm', ADMIN_SECRET], timing);
}
