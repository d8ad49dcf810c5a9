// What sync does through Portainer's API, each operation idempotent: set up
// the admin once (POST /api/users/admin/init while Portainer is still
// uninitialised: the bash never did), log in for a JWT, make sure
// each environment (endpoint) exists with the right URL, and create or update
// swarm stacks from their rendered compose file, only when the file or its
// variables differ from what Portainer has.

import { info } from '../core/log.mts';
import { addSecret } from '../core/redact.mts';
import { PortainerApiError, type PortainerClient } from './client.mts';

export type Outcome = 'created' | 'changed' | 'unchanged';

/** Portainer's EndpointCreationType values. */
export const ENDPOINT_LOCAL_DOCKER = 1;
export const ENDPOINT_AGENT = 2;
/** Portainer's stack type for a swarm stack. */
export const STACK_TYPE_SWARM = 1;

export interface EndpointSpec {
  name: string;
  creationType: number;
  url: string;
}

export interface StackSpec {
  name: string;
  compose: string;
  env: Array<{ name: string; value: string }>;
}

interface Endpoint {
  Id: number;
  Name: string;
  URL: string;
  Type?: number;
}

interface Stack {
  Id: number;
  Name: string;
  EndpointId: number;
  Env?: Array<{ name: string; value: string }> | null;
}

/** Wait until Portainer answers its status endpoint (the client retries connect errors and 5xx). */
export async function systemStatus(client: PortainerClient): Promise<{ Version?: string; InstanceID?: string }> {
  const res = await client.request<{ Version?: string; InstanceID?: string }>('GET', '/api/system/status');
  return res.body ?? {};
}

/**
 * Create the admin unless one exists. 204 from /api/users/admin/check means
 * an admin exists; 404 means Portainer still waits for its first admin.
 * A 409 on init (someone else was quicker) is "already there".
 */
export async function ensureAdmin(client: PortainerClient, user: string, password: string): Promise<Outcome> {
  const check = await client.request('GET', '/api/users/admin/check', { accept: [404] });
  if (check.status !== 404) return 'unchanged';
  const init = await client.request('POST', '/api/users/admin/init', { json: { Username: user, Password: password }, accept: [409] });
  if (init.status === 409) return 'unchanged';
  info(`Portainer admin '${user}' initialised`);
  return 'created';
}

export async function login(client: PortainerClient, user: string, password: string, passwordSource: string): Promise<string> {
  try {
    const res = await client.request<{ jwt?: string }>('POST', '/api/auth', { json: { Username: user, Password: password }, mutating: false });
    const jwt = res.body?.jwt;
    if (typeof jwt !== 'string' || jwt === '') throw new PortainerApiError('POST', '/api/auth', res.status, 'the answer holds no jwt');
    // The session token is a credential from the moment it arrives, not only once it is sent.
    addSecret(jwt);
    return jwt;
  } catch (err) {
    if (err instanceof PortainerApiError && (err.status === 401 || err.status === 422)) {
      throw new PortainerApiError('POST', '/api/auth', err.status, `Portainer refused the login of '${user}'`, `the admin exists with another password than the one in ${passwordSource}; put the right one there, or redeploy Portainer with --reset-portainer`);
    }
    throw err;
  }
}

export async function listEndpoints(client: PortainerClient, token: string): Promise<Endpoint[]> {
  const res = await client.request<Endpoint[]>('GET', '/api/endpoints', { token });
  return Array.isArray(res.body) ? res.body : [];
}

export async function ensureEndpoint(client: PortainerClient, token: string, spec: EndpointSpec): Promise<{ id: number; outcome: Outcome }> {
  const existing = (await listEndpoints(client, token)).find((e) => e.Name === spec.name);
  if (existing) {
    if (existing.URL === spec.url) return { id: existing.Id, outcome: 'unchanged' };
    await client.request('PUT', `/api/endpoints/${existing.Id}`, { token, json: { URL: spec.url } });
    info(`Portainer environment '${spec.name}' now points at ${spec.url}`);
    return { id: existing.Id, outcome: 'changed' };
  }
  const res = await client.request<Endpoint>('POST', '/api/endpoints', {
    token,
    form: { Name: spec.name, EndpointCreationType: String(spec.creationType), URL: spec.url, GroupID: '1' },
  });
  info(`Portainer environment '${spec.name}' created (${spec.url})`);
  return { id: res.body?.Id ?? 0, outcome: 'created' };
}

async function swarmId(client: PortainerClient, token: string, endpointId: number): Promise<string> {
  const res = await client.request<{ ID?: string }>('GET', `/api/endpoints/${endpointId}/docker/swarm`, { token });
  const id = res.body?.ID;
  if (typeof id !== 'string' || id === '') {
    throw new PortainerApiError('GET', `/api/endpoints/${endpointId}/docker/swarm`, res.status, 'no swarm ID: is the environment a swarm manager?');
  }
  return id;
}

function sameEnv(a: StackSpec['env'], b: Stack['Env']): boolean {
  const norm = (list: StackSpec['env'] | null | undefined) => JSON.stringify([...(list ?? [])].map((v) => [v.name, v.value]).sort());
  return norm(a) === norm(b);
}

export async function ensureStack(client: PortainerClient, token: string, endpointId: number, spec: StackSpec): Promise<Outcome> {
  const stacks = await client.request<Stack[]>('GET', '/api/stacks', { token });
  const existing = (Array.isArray(stacks.body) ? stacks.body : []).find((s) => s.Name === spec.name && s.EndpointId === endpointId);
  if (existing) {
    const file = await client.request<{ StackFileContent?: string }>('GET', `/api/stacks/${existing.Id}/file`, { token });
    if (file.body?.StackFileContent === spec.compose && sameEnv(spec.env, existing.Env)) return 'unchanged';
    await client.request('PUT', `/api/stacks/${existing.Id}?endpointId=${endpointId}`, {
      token,
      json: { StackFileContent: spec.compose, Env: spec.env, Prune: true, PullImage: false },
    });
    info(`Portainer stack '${spec.name}' updated`);
    return 'changed';
  }
  const swarm = await swarmId(client, token, endpointId);
  await client.request('POST', `/api/stacks/create/swarm/string?endpointId=${endpointId}`, {
    token,
    json: { Name: spec.name, SwarmID: swarm, StackFileContent: spec.compose, Env: spec.env },
  });
  info(`Portainer stack '${spec.name}' created`);
  return 'created';
}
