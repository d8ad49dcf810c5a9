// In-process stand-ins for Traefik's entrypoints, and the test's own
// HTTP(S) client. Traefik itself is not packaged for Debian, so:
//
//   mesh       HTTPS that requires and verifies a client certificate against
//              the root CA, refusing in the handshake like Traefik's
//              clientAuthType RequireAndVerifyClientCert (Go's crypto/tls);
//   websecure  HTTPS without client authentication (Traefik's :443);
//   web        plain HTTP (Traefik's :80, the ACME http-01 path).
//
// Each answers with JSON describing what it saw. Every client request uses a
// fresh connection (agent: false, no session cache), so no TLS session of an
// earlier request can stand in for a missing client certificate.

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type tls from 'node:tls';
import type { Scope } from './procs.mts';

export interface StandIn {
  name: string;
  address: string;
  port: number;
  /** TLS handshakes the server refused (mesh: missing or untrusted client certificates). */
  refusals: string[];
  /** Requests answered. */
  requests: number;
}

export interface Seen {
  who: string;
  host?: string;
  url?: string;
  forwardedProto?: string;
  authorized?: boolean;
  clientSubject?: string;
  clientIssuer?: string;
  servername?: string;
}

function listen(scope: Scope, server: http.Server | https.Server, standIn: StandIn): Promise<StandIn> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  scope.defer(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: standIn.address, port: standIn.port, exclusive: true }, () => resolve(standIn));
  });
}

function answer(standIn: StandIn, res: http.ServerResponse, seen: Seen): void {
  standIn.requests++;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(seen));
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function headerOf(req: http.IncomingMessage, name: string): string | undefined {
  const value: string | string[] | undefined = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export interface TlsFiles {
  /** Certificate chain (leaf + intermediate). */
  cert: string;
  key: string;
}

/** Traefik's mesh entrypoint: client certificate required and verified against `rootCa`. */
export function startMesh(scope: Scope, address: string, port: number, files: TlsFiles, rootCa: string): Promise<StandIn> {
  const standIn: StandIn = { name: 'mesh', address, port, refusals: [], requests: 0 };
  const server = https.createServer(
    {
      cert: fs.readFileSync(files.cert),
      key: fs.readFileSync(files.key),
      ca: fs.readFileSync(rootCa),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const socket = req.socket as tls.TLSSocket;
      const peer = socket.getPeerCertificate();
      answer(standIn, res, {
        who: 'mesh',
        host: headerOf(req, 'host'),
        url: req.url,
        forwardedProto: headerOf(req, 'x-forwarded-proto'),
        authorized: socket.authorized,
        clientSubject: first(peer?.subject?.CN),
        clientIssuer: first(peer?.issuer?.CN),
        servername: (socket as tls.TLSSocket & { servername?: string }).servername || undefined,
      });
    },
  );
  server.on('tlsClientError', (error: NodeJS.ErrnoException) => standIn.refusals.push(`${error.code ?? ''} ${error.message}`.trim()));
  return listen(scope, server, standIn);
}

/** Traefik's websecure entrypoint (where passed-through TLS ends). */
export function startWebsecure(scope: Scope, address: string, port: number, files: TlsFiles): Promise<StandIn> {
  const standIn: StandIn = { name: 'websecure', address, port, refusals: [], requests: 0 };
  // Traefik answers ALPN acme-tls/1 itself (its TLS challenge); so does this stand-in.
  const options = { cert: fs.readFileSync(files.cert), key: fs.readFileSync(files.key), ALPNProtocols: ['http/1.1', 'acme-tls/1'] };
  const server = https.createServer(options, (req, res) =>
    answer(standIn, res, { who: 'websecure', host: headerOf(req, 'host'), url: req.url }),
  );
  server.on('tlsClientError', (error: NodeJS.ErrnoException) => standIn.refusals.push(`${error.code ?? ''} ${error.message}`.trim()));
  return listen(scope, server, standIn);
}

/** Traefik's web entrypoint (ACME http-01 challenges arrive here). */
export function startWeb(scope: Scope, address: string, port: number): Promise<StandIn> {
  const standIn: StandIn = { name: 'web', address, port, refusals: [], requests: 0 };
  const server = http.createServer((req, res) =>
    answer(standIn, res, { who: 'web', host: headerOf(req, 'host'), url: req.url, forwardedProto: headerOf(req, 'x-forwarded-proto') }),
  );
  return listen(scope, server, standIn);
}

// ---------------------------------------------------------------- client

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The server certificate's subject CN and SANs (HTTPS). */
  peerSubject?: string;
  peerAltNames?: string;
}

export interface RequestOptions {
  address: string;
  port: number;
  path?: string;
  /** Host header, and the SNI for HTTPS. */
  host: string;
  /** HTTPS: trust this root (and check the server's name against `host`). */
  ca?: string;
  clientCert?: TlsFiles;
  alpn?: string[];
  timeoutMs?: number;
}

/** One request on a fresh connection. Rejects on TLS or connection errors (a refused handshake). */
export function request(options: RequestOptions): Promise<Reply> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const common = { host: options.address, port: options.port, path: options.path ?? '/', headers: { host: options.host }, agent: false as const, timeout: timeoutMs };
    const onResponse = (res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => {
        const socket = res.socket as tls.TLSSocket | null;
        const peer = socket && 'getPeerCertificate' in socket ? socket.getPeerCertificate() : undefined;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, peerSubject: first(peer?.subject?.CN), peerAltNames: peer?.subjectaltname });
      });
      res.on('error', reject);
    };
    const req = options.ca
      ? https.request(
          {
            ...common,
            servername: options.host,
            ca: fs.readFileSync(options.ca),
            ...(options.clientCert ? { cert: fs.readFileSync(options.clientCert.cert), key: fs.readFileSync(options.clientCert.key) } : {}),
            ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
          },
          onResponse,
        )
      : http.request(common, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${options.address}:${options.port} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The JSON a stand-in answered with. */
export function seen(reply: Reply): Seen {
  try {
    return JSON.parse(reply.body) as Seen;
  } catch {
    throw new Error(`not a stand-in's answer (HTTP ${reply.status}): ${reply.body.slice(0, 200)}`);
  }
}

/** The error a request failed with, or undefined when it got an HTTP answer. */
export async function refusal(options: RequestOptions): Promise<{ error?: Error; reply?: Reply }> {
  try {
    return { reply: await request(options) };
  } catch (error) {
    return { error: error as Error };
  }
}

/**
 * A bare TLS handshake (no HTTP): the certificate subject the server presented
 * and the ALPN protocol it chose. Used to see where a ClientHello was routed.
 */
export function tlsPeer(options: { address: string; port: number; servername: string; alpn?: string[]; timeoutMs?: number }): Promise<{ subject?: string; alpn: string | false }> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: options.address,
      port: options.port,
      servername: options.servername,
      rejectUnauthorized: false,
      ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no TLS handshake with ${options.address}:${options.port} within ${timeoutMs} ms`)));
    socket.once('secureConnect', () => {
      const subject = first(socket.getPeerCertificate()?.subject?.CN);
      const alpn = socket.alpnProtocol ?? false;
      socket.destroy();
      resolve({ subject, alpn });
    });
    socket.once('error', reject);
  });
}
