// Secrets must never reach a log line, a recorded command or an error
// message. Two mechanisms: values a script registers (a password it read
// from a file), and patterns for secrets that travel in well-known shapes.

const registered = new Set<string>();

export const REDACTED = '***';

/** Register a secret value; every later log line and record has it masked. */
export function addSecret(value: string | undefined | null): void {
  // Very short values would mask innocent text everywhere ("1", "yes").
  if (value && value.length >= 4) registered.add(value);
}

export function clearSecrets(): void {
  registered.clear();
}

const patterns: Array<[RegExp, string]> = [
  // PEM private keys, whatever their kind.
  [/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g, `-----BEGIN $1PRIVATE KEY-----${REDACTED}`],
  // JSON members and key=value / key: value pairs whose key names a secret.
  [/("(?:[\w-]*?)(?:password|passwd|secret|token|api_?key)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, `$1"${REDACTED}"`],
  [/\b((?:[\w-]*?)(?:password|passwd|secret|token|api_?key)(?:=|:\s*))(?!["{\[])[^\s,;&]+/gi, `$1${REDACTED}`],
  // HTTP credentials.
  [/(Authorization:\s*(?:Bearer|Basic)\s+)\S+/gi, `$1${REDACTED}`],
  [/(X-API-Key:\s*)\S+/gi, `$1${REDACTED}`],
  // Docker Swarm join tokens.
  [/SWMTKN-1-[0-9a-z-]+/gi, `SWMTKN-1-${REDACTED}`],
];

export function redact(text: string): string {
  let out = text;
  for (const value of registered) out = out.split(value).join(REDACTED);
  for (const [pattern, replacement] of patterns) out = out.replace(pattern, replacement);
  return out;
}

const SECRET_KEY = /password|passwd|passphrase|secret|token|api_?key|private_?key|credential/i;

/**
 * A copy of a manifest without the values whose key names a secret (keys
 * naming a file or path that holds one stay): what may be staged into a
 * guest that needs the manifest but not its credentials.
 */
export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (SECRET_KEY.test(key) && !/_(file|path)$/.test(key)) continue;
    out[key] = withoutSecrets(inner);
  }
  return out;
}
