// Secrets must never reach a log line, a recorded command or an error
// message. Two mechanisms: values a script registers (a password it read
// from a file), and patterns for secrets that travel in well-known shapes.
//
// `redact` is applied where text leaves the process, not where it is made:
// the log writer (terminal and file), process.stdout/stderr once a script
// has started (lib/core/main.mts), the output of child processes passed through
// (lib/core/runner.mts), the command record, and the text of every PhoenixError.
// So code that prints a tool's answer, or builds an error from it, cannot
// forget to mask it.

const registered = new Set<string>();

export const REDACTED = '***';

/** Lines of a registered multi-line secret shorter than this are not masked on their own. */
const MIN_LINE_SECRET = 16;

/** Register a secret value; every later log line and record has it masked. */
export function addSecret(value: string | undefined | null): void {
  // Very short values would mask innocent text everywhere ("1", "yes").
  if (!value || value.length < 4) return;
  registered.add(value);
  // How the value reads inside a JSON string (a record line, an API body).
  const escaped = JSON.stringify(value).slice(1, -1);
  if (escaped !== value) registered.add(escaped);
  // Output is often cut to its last lines and joined with ' | ': each long
  // line of a multi-line secret (a key file) must be masked on its own.
  if (value.includes('\n')) {
    for (const line of value.split(/\r?\n/)) {
      const trimmed = line.trim();
      if (trimmed.length >= MIN_LINE_SECRET) registered.add(trimmed);
    }
  }
}

export function clearSecrets(): void {
  registered.clear();
}

const SECRET_WORD = '(?:password|passwd|passphrase|secret|token|api_?key)';

const patterns: Array<[RegExp, string]> = [
  // PEM private keys, whatever their kind; an unterminated one is masked to the end.
  // Text already masked is left alone: redact(redact(x)) is redact(x).
  [/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?!\*\*\*)[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g, `-----BEGIN $1PRIVATE KEY-----${REDACTED}`],
  // The tail of a key whose first lines were cut off (output shortened to its last lines).
  [/(?:[A-Za-z0-9+/=:-]{16,}(?:[ \t]*\|[ \t]*|\s+))+(-----END ([A-Z0-9 ]*)PRIVATE KEY-----)/g, `${REDACTED}$1`],
  // JSON members and key=value / key: value pairs whose key names a secret.
  // A key right after '/' is a JSON pointer in a message, not a secret's name.
  [new RegExp(`("(?:[\\w-]*?)${SECRET_WORD}"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi'), `$1"${REDACTED}"`],
  [new RegExp(`(?<![\\w/-])((?:[\\w-]*?)${SECRET_WORD}(?:=|:\\s*))(?!["{\\[]|\\*\\*\\*)[^\\s,;&]+`, 'gi'), `$1${REDACTED}`],
  // HTTP credentials, with or without the header name.
  [/(Authorization:\s*(?:Bearer|Basic)\s+)\S+/gi, `$1${REDACTED}`],
  [/\b(Bearer\s+)(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}/g, `$1${REDACTED}`],
  [/(X-API-Key:\s*)\S+/gi, `$1${REDACTED}`],
  // JSON web tokens (Portainer's session token among them).
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/g, REDACTED],
  // Docker Swarm join tokens.
  [/SWMTKN-1-(?!\*\*\*)[0-9a-z-]+/gi, `SWMTKN-1-${REDACTED}`],
];

export function redact(text: string): string {
  let out = text;
  // Longest first, so a secret containing another is masked whole.
  for (const value of [...registered].sort((a, b) => b.length - a.length)) {
    if (out.includes(value)) out = out.split(value).join(REDACTED);
  }
  for (const [pattern, replacement] of patterns) out = out.replace(pattern, replacement);
  return out;
}

const PEM_KEY_BEGIN = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----/;

/**
 * Redaction for a stream (a child's output passed through): text is
 * released a whole line at a time, so a secret is never split between two
 * writes, and a private key is held back until its END line arrives (or
 * dropped, past `maxHeld` bytes, as masked). `push` returns what may be
 * written now, `end` the rest. `partial` releases an incomplete last line
 * (a prompt) unless a key is open.
 */
export class StreamRedactor {
  private pending = '';
  private skippingKey = false;
  private readonly maxHeld: number;

  constructor(maxHeld = 256 * 1024) {
    this.maxHeld = maxHeld;
  }

  push(chunk: string): string {
    this.pending += chunk;
    let out = '';
    if (this.skippingKey) {
      const end = /-----END [A-Z0-9 ]*PRIVATE KEY-----/.exec(this.pending);
      if (!end) {
        // Keep only what could be the start of the END line.
        this.pending = this.pending.slice(-64);
        return '';
      }
      this.pending = this.pending.slice(end.index + end[0].length);
      this.skippingKey = false;
    }
    const cut = this.pending.lastIndexOf('\n');
    if (cut < 0) return out + this.overflow();
    let ready = this.pending.slice(0, cut + 1);
    let held = this.pending.slice(cut + 1);
    const open = openKeyAt(ready);
    if (open >= 0) {
      held = ready.slice(open) + held;
      ready = ready.slice(0, open);
    }
    this.pending = held;
    out += redact(ready);
    return out + this.overflow();
  }

  /** The incomplete last line, when no key is being held back. */
  partial(): string {
    if (this.pending === '' || openKeyAt(this.pending) >= 0 || this.skippingKey) return '';
    const text = this.pending;
    this.pending = '';
    return redact(text);
  }

  end(): string {
    if (this.skippingKey) {
      this.pending = '';
      return '';
    }
    const text = this.pending;
    this.pending = '';
    return text === '' ? '' : redact(text);
  }

  private overflow(): string {
    if (this.pending.length <= this.maxHeld) return '';
    const open = openKeyAt(this.pending);
    if (open >= 0) {
      const head = redact(this.pending.slice(0, open));
      const kind = PEM_KEY_BEGIN.exec(this.pending.slice(open))?.[1] ?? '';
      this.pending = '';
      this.skippingKey = true;
      return `${head}-----BEGIN ${kind}PRIVATE KEY-----${REDACTED}\n`;
    }
    const text = this.pending;
    this.pending = '';
    return redact(text);
  }
}

/** Where a private key starts that has no END yet, or -1. */
function openKeyAt(text: string): number {
  const re = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----/g;
  let last = -1;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const end = text.indexOf(`-----END ${m[1]}PRIVATE KEY-----`, m.index);
    if (end < 0) {
      last = m.index;
      break;
    }
    re.lastIndex = end;
  }
  return last;
}

const SECRET_KEY = /password|passwd|passphrase|secret|token|api_?key|private_?key|credential/i;

/** Whether a JSON member or option of this name holds a secret (names of files holding one do not). */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) && !/_?(file|path)$/i.test(key);
}

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
