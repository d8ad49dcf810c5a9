#!/usr/bin/env node
// A stand-in for Portainer CE's HTTP API, on 127.0.0.1 only, for the tests
// and for `make sync` on the simulated host (whose VMs run nothing, so no
// real Portainer is there to talk to). It keeps the state sync relies on:
// the admin (initialised once; the password kept only as a SHA-256 digest),
// JWT logins, environments (endpoints), a swarm ID per environment and swarm
// stacks with their compose text and variables. Every request is logged as
// one JSON line (method, path, status; never a body or a header).
//
//   node test/portainer-standin/server.mjs [--port 0] [--state FILE] [--log FILE]
//        [--max-lifetime SECONDS] [--tls-cert PEM --tls-key PEM] [--fail-first N]
//        [--pid-file FILE]
//
// Prints `listening <url>` once ready. It always ends by itself after
// --max-lifetime seconds (default 300), so it can never outlive its test.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';

export interface StandinOptions {
  port?: number;
  stateFile?: string;
  logFile?: string;
  maxLifetimeSeconds?: number;
  tls?: { cert: string; key: string };
  /** Answer this many requests with 503 first (to exercise retries). */
  failFirst?: number;
}

interface StoredStack {
  Id: number;
  Name: string;
  Type: number;
  EndpointId: number;
  SwarmId: string;
  Env: Array<{ name: string; value: string }>;
  StackFileContent: string;
  CreationDate: number;
  UpdateDate: number;
}

export interface StandinState {
  admin: { username: string; passwordSha256: string } | null;
  endpoints: Array<{ Id: number; Name: string; URL: string; Type: number; GroupId: number; SwarmId: string }>;
  stacks: StoredStack[];
  nextId: number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  authenticated: boolean;
}

export interface Standin {
  url: string;
  state: StandinState;
  requests: RequestLogEntry[];
  close(): Promise<void>;
}

const MIN_PASSWORD = 12;

function emptyState(): StandinState {
  return { admin: null, endpoints: [], stacks: [], nextId: 1 };
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

export async function startStandin(options: StandinOptions = {}): Promise<Standin> {
  let state: StandinState = emptyState();
  if (options.stateFile && fs.existsSync(options.stateFile)) state = JSON.parse(fs.readFileSync(options.stateFile, 'utf8')) as StandinState;
  const tokens = new Set<string>();
  const requests: RequestLogEntry[] = [];
  let failuresLeft = options.failFirst ?? 0;

  const save = () => {
    if (!options.stateFile) return;
    const temp = `${options.stateFile}.${process.pid}.tmp`;
    fs.writeFileSync(temp, JSON.stringify(state, null, 2), { mode: 0o600 });
    fs.renameSync(temp, options.stateFile);
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://standin');
      const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const authenticated = auth !== undefined && tokens.has(auth);
      const send = (status: number, body?: unknown) => {
        const entry: RequestLogEntry = { method: req.method ?? '', path: url.pathname, status, authenticated };
        requests.push(entry);
        if (options.logFile) fs.appendFileSync(options.logFile, `${JSON.stringify(entry)}\n`);
        const text = body === undefined ? '' : JSON.stringify(body);
        res.writeHead(status, body === undefined ? {} : { 'Content-Type': 'application/json' });
        res.end(text);
      };
      if (failuresLeft > 0) {
        failuresLeft--;
        return send(503, { message: 'Service unavailable (injected)' });
      }
      try {
        route(req.method ?? 'GET', url, Buffer.concat(chunks), req.headers['content-type'] ?? '', authenticated, send);
      } catch (err) {
        send(500, { message: 'stand-in error', details: err instanceof Error ? err.message : String(err) });
      }
    });
  };

  const route = (method: string, url: URL, raw: Buffer, contentType: string, authenticated: boolean, send: (status: number, body?: unknown) => void) => {
    const p = url.pathname.replace(/\/+$/, '');
    const json = (): Record<string, unknown> => {
      if (raw.length === 0) return {};
      return JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    };
    // Go's JSON decoding matches member names case-insensitively; so does Portainer.
    const field = (body: Record<string, unknown>, name: string): unknown => {
      const key = Object.keys(body).find((k) => k.toLowerCase() === name.toLowerCase());
      return key === undefined ? undefined : body[key];
    };

    if (method === 'GET' && p === '/api/system/status') return send(200, { Version: '2.21.5', InstanceID: 'standin-instance' });
    if (method === 'GET' && p === '/api/users/admin/check') return send(state.admin ? 204 : 404, state.admin ? undefined : { message: 'No administrator account found inside the database' });
    if (method === 'POST' && p === '/api/users/admin/init') {
      const body = json();
      const username = field(body, 'Username');
      const password = field(body, 'Password');
      if (typeof username !== 'string' || username === '' || typeof password !== 'string') return send(400, { message: 'Invalid request payload' });
      if (password.length < MIN_PASSWORD) return send(400, { message: 'Password does not meet the requirements' });
      if (state.admin) return send(409, { message: 'Unable to create administrator user', details: 'An administrator user already exists' });
      state.admin = { username, passwordSha256: sha256(password) };
      save();
      return send(200, { Id: 1, Username: username, Role: 1 });
    }
    if (method === 'POST' && p === '/api/auth') {
      const body = json();
      const username = field(body, 'Username');
      const password = field(body, 'Password');
      if (!state.admin || username !== state.admin.username || typeof password !== 'string' || sha256(password) !== state.admin.passwordSha256) {
        return send(422, { message: 'Invalid credentials', details: 'Unauthorized' });
      }
      const jwt = `standin.${crypto.randomBytes(18).toString('base64url')}`;
      tokens.add(jwt);
      return send(200, { jwt });
    }
    if (!p.startsWith('/api/')) return send(404, { message: 'Not found' });
    if (!authenticated) return send(401, { message: 'Unauthorized', details: 'A valid authorisation token is missing' });

    if (p === '/api/endpoints' && method === 'GET') return send(200, state.endpoints.map(publicEndpoint));
    if (p === '/api/endpoints' && method === 'POST') {
      const form = parseForm(raw, contentType);
      const name = form.Name;
      const type = Number(form.EndpointCreationType);
      if (!name || !Number.isInteger(type) || type < 1 || type > 5) return send(400, { message: 'Invalid request payload' });
      if (state.endpoints.some((e) => e.Name === name)) return send(409, { message: 'Name is not unique' });
      const url = form.URL ?? (type === 1 ? 'unix:///var/run/docker.sock' : '');
      const endpoint = { Id: state.nextId++, Name: name, URL: url, Type: type, GroupId: Number(form.GroupID ?? 1), SwarmId: `swarm-${crypto.randomBytes(6).toString('hex')}` };
      state.endpoints.push(endpoint);
      save();
      return send(200, publicEndpoint(endpoint));
    }
    const endpointMatch = /^\/api\/endpoints\/(\d+)(\/docker\/swarm)?$/.exec(p);
    if (endpointMatch) {
      const endpoint = state.endpoints.find((e) => e.Id === Number(endpointMatch[1]));
      if (!endpoint) return send(404, { message: 'Unable to find an environment with the specified identifier inside the database' });
      if (endpointMatch[2] && method === 'GET') return send(200, { ID: endpoint.SwarmId });
      if (!endpointMatch[2] && method === 'GET') return send(200, publicEndpoint(endpoint));
      if (!endpointMatch[2] && method === 'PUT') {
        const url = field(json(), 'URL');
        if (typeof url === 'string') endpoint.URL = url;
        save();
        return send(200, publicEndpoint(endpoint));
      }
      if (!endpointMatch[2] && method === 'DELETE') {
        state.endpoints = state.endpoints.filter((e) => e !== endpoint);
        save();
        return send(204);
      }
    }
    if (p === '/api/stacks' && method === 'GET') return send(200, state.stacks.map(publicStack));
    if (p === '/api/stacks/create/swarm/string' && method === 'POST') {
      const endpointId = Number(url.searchParams.get('endpointId'));
      const endpoint = state.endpoints.find((e) => e.Id === endpointId);
      if (!endpoint) return send(404, { message: 'Unable to find an environment with the specified identifier inside the database' });
      const body = json();
      const name = field(body, 'Name');
      const swarmId = field(body, 'SwarmID');
      const content = field(body, 'StackFileContent');
      if (typeof name !== 'string' || !/^[a-z0-9_-]+$/.test(name) || typeof content !== 'string' || content === '') return send(400, { message: 'Invalid request payload' });
      if (swarmId !== endpoint.SwarmId) return send(400, { message: 'Invalid SwarmID' });
      if (state.stacks.some((s) => s.Name === name && s.EndpointId === endpointId)) return send(409, { message: `A stack with the name '${name}' already exists` });
      const now = Math.floor(Date.now() / 1000);
      const stack: StoredStack = { Id: state.nextId++, Name: name, Type: 1, EndpointId: endpointId, SwarmId: endpoint.SwarmId, Env: envOf(field(body, 'Env')), StackFileContent: content, CreationDate: now, UpdateDate: 0 };
      state.stacks.push(stack);
      save();
      return send(200, publicStack(stack));
    }
    const stackMatch = /^\/api\/stacks\/(\d+)(\/file)?$/.exec(p);
    if (stackMatch) {
      const stack = state.stacks.find((s) => s.Id === Number(stackMatch[1]));
      if (!stack) return send(404, { message: 'Unable to find a stack with the specified identifier inside the database' });
      if (stackMatch[2] && method === 'GET') return send(200, { StackFileContent: stack.StackFileContent });
      if (!stackMatch[2] && method === 'GET') return send(200, publicStack(stack));
      if (!stackMatch[2] && method === 'PUT') {
        const body = json();
        const content = field(body, 'StackFileContent');
        if (typeof content !== 'string' || content === '') return send(400, { message: 'Invalid request payload' });
        stack.StackFileContent = content;
        stack.Env = envOf(field(body, 'Env'));
        stack.UpdateDate = Math.floor(Date.now() / 1000);
        save();
        return send(200, publicStack(stack));
      }
      if (!stackMatch[2] && method === 'DELETE') {
        state.stacks = state.stacks.filter((s) => s !== stack);
        save();
        return send(204);
      }
    }
    return send(404, { message: 'Not found' });
  };

  const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler) : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const lifetime = setTimeout(() => void close(), (options.maxLifetimeSeconds ?? 300) * 1000);
  lifetime.unref();
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      clearTimeout(lifetime);
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    get state() {
      return state;
    },
    requests,
    close,
  };
}

function publicEndpoint(e: StandinState['endpoints'][number]) {
  return { Id: e.Id, Name: e.Name, URL: e.URL, Type: e.Type, GroupId: e.GroupId, Status: 1 };
}

function publicStack(s: StoredStack) {
  const { StackFileContent: _content, ...rest } = s;
  void _content;
  return rest;
}

function envOf(value: unknown): Array<{ name: string; value: string }> {
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is { name: string; value: string } => typeof v?.name === 'string' && typeof v?.value === 'string').map((v) => ({ name: v.name, value: v.value }));
}

/** multipart/form-data or application/x-www-form-urlencoded fields, as Go's FormValue reads them. */
function parseForm(raw: Buffer, contentType: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  if (contentType.startsWith('multipart/form-data') && boundary) {
    const marker = `--${boundary[1] ?? boundary[2]}`;
    for (const part of raw.toString('utf8').split(marker)) {
      const match = /Content-Disposition: form-data; name="([^"]+)"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)\r\n$/i.exec(part);
      if (match) fields[match[1] as string] = match[2] as string;
    }
  } else {
    for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) fields[k] = v;
  }
  return fields;
}

// ---------------------------------------------------------------- command line

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const args = process.argv.slice(2);
  const certFile = argValue(args, '--tls-cert');
  const keyFile = argValue(args, '--tls-key');
  const pidFile = argValue(args, '--pid-file');
  const options: StandinOptions = {
    port: Number(argValue(args, '--port') ?? 0),
    maxLifetimeSeconds: Number(argValue(args, '--max-lifetime') ?? 300),
    failFirst: Number(argValue(args, '--fail-first') ?? 0),
  };
  const stateFile = argValue(args, '--state');
  const logFile = argValue(args, '--log');
  if (stateFile) options.stateFile = stateFile;
  if (logFile) options.logFile = logFile;
  if (certFile && keyFile) options.tls = { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
  const standin = await startStandin(options);
  if (pidFile) fs.writeFileSync(pidFile, `${process.pid}\n`);
  process.stdout.write(`listening ${standin.url}\n`);
  const stop = () => {
    void standin.close().then(() => {
      if (pidFile) fs.rmSync(pidFile, { force: true });
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The lifetime timer is unref'd for in-process use; here it must end the process.
  setTimeout(stop, options.maxLifetimeSeconds! * 1000);
}
