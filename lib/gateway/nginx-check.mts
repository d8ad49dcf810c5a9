// `nginx -t` on generated gateway files: a copy of them in a temporary
// prefix, with the certificates they name, checked by the real nginx. It
// changes nothing on the host.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PhoenixError } from '../core/errors.mts';
import { query } from '../core/runner.mts';
import { onHost } from '../guest/hostdirs.mts';
import {
  
  SITE_RELATIVE,
  STREAM_RELATIVE,
  STREAM_MODULE,
  type GeneratedFile,
  type GatewayModel,
  type TlsFile,
} from './nginx-model.mts';
import { renderNginxConf } from './nginx-conf.mts';

// ---------------------------------------------------------------- nginx -t

/** The nginx binary on PATH, without spawning anything. */
export function findNginx(envPath = process.env.PATH ?? ''): string | undefined {
  return findOnPath('nginx', envPath);
}

export function findOnPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * `nginx -t` opens the listening sockets it checks. As root it runs in a
 * network namespace of its own (`unshare --net`), so the check never holds
 * the host's :80/:443, even for a moment; where namespaces are not allowed
 * it runs as is.
 */
export async function nginxTest(nginx: string, args: string[]) {
  const unshare = process.getuid?.() === 0 ? findOnPath('unshare') : undefined;
  if (unshare) {
    const isolated = await query({ cmd: unshare, args: ['--net', '--', nginx, ...args], allowFailure: true, timeoutMs: 30_000 });
    if (isolated.code === 0 || !/^unshare: /m.test(isolated.stderr)) return isolated;
  }
  return query({ cmd: nginx, args, allowFailure: true, timeoutMs: 30_000 });
}

export function readable(file: string | undefined): file is string {
  if (file === undefined) return false;
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Check the site and stream files with `nginx -t` in a temporary prefix
 * before anything is installed. Certificates are the host's copies where the
 * manifest names readable ones (so nginx also checks that key and certificate
 * match); otherwise a throw-away self-signed pair stands in. Listeners and
 * upstreams are checked as written (IP literals only, so nothing is resolved;
 * nginx -t ignores a port already in use). Read-only for the host: it runs
 * in dry-run too. Throws with nginx's own message when the files are rejected.
 */
export async function validateWithNginx(model: GatewayModel, files: GeneratedFile[], nginx: string, hostRoot = '/'): Promise<void> {
  const hostCopy = (file: TlsFile) => (file.host === undefined ? undefined : onHost(hostRoot, file.host));
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'phoenix-nginx-t-'));
  try {
    const replacements = new Map<string, string>();
    let throwaway: { cert: string; key: string } | undefined;
    const standIn = async () => {
      if (!throwaway) {
        throwaway = { cert: path.join(scratch, 'standin.crt'), key: path.join(scratch, 'standin.key') };
        await query({
          cmd: 'openssl',
          args: ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=phoenix-nginx-check', '-keyout', throwaway.key, '-out', throwaway.cert],
          quiet: true,
        });
      }
      return throwaway;
    };
    for (const [cert, key] of [
      [model.serverCert, model.serverKey],
      [model.clientCert, model.clientKey],
    ] as const) {
      const certHost = hostCopy(cert);
      const keyHost = hostCopy(key);
      const pair = readable(certHost) && readable(keyHost) ? { cert: certHost, key: keyHost } : await standIn();
      replacements.set(cert.path, pair.cert);
      replacements.set(key.path, pair.key);
    }
    const rootHost = hostCopy(model.rootCa);
    replacements.set(model.rootCa.path, readable(rootHost) ? rootHost : (await standIn()).cert);

    const copy = (text: string) => {
      let out = text;
      for (const [from, to] of replacements) out = out.split(` ${from};`).join(` ${to};`);
      return out;
    };
    const site = files.find((file) => file.relative === SITE_RELATIVE);
    const stream = files.find((file) => file.relative === STREAM_RELATIVE);
    if (!site || !stream) throw new PhoenixError('internal: the gateway files to validate are incomplete');
    fs.writeFileSync(path.join(scratch, 'gateway'), copy(site.text));
    fs.writeFileSync(path.join(scratch, 'stream-gateway.conf'), copy(stream.text));
    const conf = renderNginxConf(model, {
      ...(fs.existsSync(STREAM_MODULE) ? { streamModule: STREAM_MODULE } : {}),
      scratch,
      sitesInclude: path.join(scratch, 'gateway'),
      streamInclude: path.join(scratch, 'stream-gateway.conf'),
    });
    const confFile = path.join(scratch, 'nginx.conf');
    fs.writeFileSync(confFile, conf);
    const result = await nginxTest(nginx, ['-t', '-q', '-p', `${scratch}/`, '-c', confFile, '-e', path.join(scratch, 'error.log')]);
    if (result.code !== 0) {
      const reason = (result.stderr || result.stdout).split('\n').filter((line) => /emerg|alert|crit|error/.test(line)).join('; ') || result.stderr.trim();
      throw new PhoenixError(`nginx rejected the generated gateway configuration: ${reason.split(scratch).join('<check dir>')}`, {
        hint: 'nothing was installed; fix the manifests (or the certificate files they name) and run again',
      });
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
