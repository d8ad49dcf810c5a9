// A small client for Portainer's HTTP API, built on node:http/https: no shell,
// no curl, so no password or token ever reaches a command line. Requests that
// fail to connect, time out or get a 5xx answer are retried with exponential
// back-off (Portainer restarts while its stack is updated); every other
// answer is final. A failure names the method, the endpoint and the status.
// Bodies and tokens are never logged; the secrets a caller registers with
// addSecret are masked in anything that is.

import http from 'node:http';
import https from 'node:https';
import { PhoenixError } from '../core/errors.mts';
import { debug, info } from '../core/log.mts';
import { addSecret, isSecretKey, redact } from '../core/redact.mts';
import { sleep } from '../core/runner.mts';
import { isDryRun } from '../core/context.mts';

export interface PortainerClientOptions {
  /** e.g. https://10.0.0.21:9443 (no trailing /api). */
  baseUrl: string;
  /** PEM of the CA that signed Portainer's certificate (https only). */
  ca?: string;
  /** Attempts per request for connect errors and 5xx answers (default 6). */
  attempts?: number;
  /** First back-off pause in ms, doubled each time, capped at 10 s (default 1000). */
  backoffMs?: number;
  /** Time limit of one attempt in ms (default 15000). */
  timeoutMs?: number;
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  text: string;
}

export interface RequestOptions {
  json?: unknown;
  /** multipart/form-data fields (Portainer's endpoint creation takes a form). */
  form?: Record<string, string>;
  token?: string;
  /** Statuses that are answers rather than errors (default: 2xx). */
  accept?: readonly number[];
  /** A POST that only reads (login). Everything but GET changes something unless it says so. */
  mutating?: boolean;
}

/** A Portainer API call that failed; exit status 1 like the bash's fatal API errors. */
export class PortainerApiError extends PhoenixError {
  readonly method: string;
  readonly endpoint: string;
  readonly status: number | undefined;

  constructor(method: string, endpoint: string, status: number | undefined, detail: string, hint?: string) {
    super(`Portainer API ${method} ${endpoint} ${status === undefined ? 'got no answer' : `answered ${status}`}${detail ? `: ${detail}` : ''}`, hint === undefined ? {} : { hint });
    this.method = method;
    this.endpoint = endpoint;
    this.status = status;
  }
}

const RETRIABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE', 'ESOCKETTIMEDOUT']);

export class PortainerClient {
  readonly baseUrl: URL;
  private readonly options: Required<Omit<PortainerClientOptions, 'ca' | 'baseUrl'>> & { ca?: string };

  constructor(options: PortainerClientOptions) {
    this.baseUrl = new URL(options.baseUrl.replace(/\/+$/, '') + '/');
    if (this.baseUrl.protocol !== 'http:' && this.baseUrl.protocol !== 'https:') {
      throw new PhoenixError(`Portainer URL ${options.baseUrl} is neither http nor https`);
    }
    this.options = {
      attempts: Math.max(1, options.attempts ?? 6),
      backoffMs: options.backoffMs ?? 1000,
      timeoutMs: options.timeoutMs ?? 15_000,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    };
  }

  get url(): string {
    return this.baseUrl.href.replace(/\/$/, '');
  }

  async request<T = unknown>(method: string, endpoint: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const mutating = options.mutating ?? method !== 'GET';
    if (options.token) addSecret(options.token);
    // A password sent in a body is masked before Portainer can echo it in an error answer.
    registerBodySecrets(options.json);
    registerBodySecrets(options.form);
    if (mutating && isDryRun()) {
      info(`DRY-RUN: would call Portainer API ${method} ${endpoint}`);
      return { status: 0, body: undefined as T, text: '' };
    }
    const accept = options.accept ?? [];
    let delay = this.options.backoffMs;
    for (let attempt = 1; ; attempt++) {
      let outcome: { status: number; text: string } | { error: NodeJS.ErrnoException };
      try {
        outcome = await this.send(method, endpoint, options);
      } catch (err) {
        outcome = { error: err as NodeJS.ErrnoException };
      }
      const last = attempt >= this.options.attempts;
      if ('error' in outcome) {
        const code = outcome.error.code ?? '';
        const retriable = RETRIABLE_CODES.has(code) || /timed? ?out|socket hang up/i.test(outcome.error.message);
        if (!retriable || last) {
          throw new PortainerApiError(method, endpoint, undefined, `${code || outcome.error.message} (${this.url}, ${attempt} attempt${attempt === 1 ? '' : 's'})`, retriable ? `is Portainer running and reachable at ${this.url}? (PHOENIX_PORTAINER_URL overrides the address)` : undefined);
        }
        info(`Portainer API ${method} ${endpoint}: ${code || outcome.error.message}; retrying in ${delay} ms (attempt ${attempt}/${this.options.attempts})`);
      } else {
        const { status, text } = outcome;
        debug(`Portainer API ${method} ${endpoint} -> ${status}`);
        if ((status >= 200 && status < 300) || accept.includes(status)) {
          return { status, text, body: parseBody(text) as T };
        }
        if (status < 500 || last) {
          throw new PortainerApiError(method, endpoint, status, messageOf(text));
        }
        info(`Portainer API ${method} ${endpoint} answered ${status}; retrying in ${delay} ms (attempt ${attempt}/${this.options.attempts})`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 10_000);
    }
  }

  private send(method: string, endpoint: string, options: RequestOptions): Promise<{ status: number; text: string }> {
    const target = new URL(endpoint.replace(/^\/+/, ''), this.baseUrl);
    const headers: Record<string, string> = { Accept: 'application/json' };
    let payload: Buffer | undefined;
    if (options.json !== undefined) {
      payload = Buffer.from(JSON.stringify(options.json));
      headers['Content-Type'] = 'application/json';
    } else if (options.form !== undefined) {
      const boundary = `phoenix${Date.now().toString(16)}${Math.random().toString(16).slice(2)}`;
      payload = multipart(options.form, boundary);
      headers['Content-Type'] = `multipart/form-data; boundary=${boundary}`;
    }
    if (payload !== undefined) headers['Content-Length'] = String(payload.length);
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    const secure = target.protocol === 'https:';
    const requestOptions: https.RequestOptions = {
      method,
      hostname: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port || (secure ? 443 : 80),
      path: `${target.pathname}${target.search}`,
      headers,
      timeout: this.options.timeoutMs,
      ...(secure && this.options.ca !== undefined ? { ca: this.options.ca } : {}),
    };
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(requestOptions, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

function registerBodySecrets(body: unknown): void {
  if (body === null || typeof body !== 'object') return;
  // A stack variable {name: 'DB_PASSWORD', value: …} holds its secret under a neutral key.
  const { name, value } = body as { name?: unknown; value?: unknown };
  if (typeof name === 'string' && typeof value === 'string' && isSecretKey(name)) addSecret(value);
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if (typeof value === 'string' && isSecretKey(key)) addSecret(value);
    else if (value !== null && typeof value === 'object') registerBodySecrets(value);
  }
}

function multipart(fields: Record<string, string>, boundary: string): Buffer {
  const parts = Object.entries(fields).map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
  return Buffer.from(`${parts.join('')}--${boundary}--\r\n`);
}

function parseBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Portainer's error answers are {message, details}; show those, masked, never a whole body. */
function messageOf(text: string): string {
  const body = parseBody(text);
  if (body && typeof body === 'object') {
    const { message, details } = body as { message?: unknown; details?: unknown };
    const parts = [message, details].filter((p): p is string => typeof p === 'string' && p !== '');
    if (parts.length > 0) return redact(parts.join(': ')).slice(0, 300);
  }
  return redact(typeof body === 'string' ? body.trim().split('\n')[0] ?? '' : '').slice(0, 200);
}
