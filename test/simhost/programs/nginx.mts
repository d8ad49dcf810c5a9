// `nginx -t` (and -T, -q, -c FILE) inside simulated guests where the nginx
// binary is installed. The configuration is read as nginx reads it: the
// main file, then every `include` (globs expanded and sorted, relative
// paths against the main file's directory, a missing non-glob include is
// fatal), comments dropped, braces balanced. Then every certificate, key
// and CA file the TLS directives name (values without variables) is opened
// as the acting subject with the guest's permission rules, and a failure is
// reported in nginx's and OpenSSL 3's words. `stream {}` needs the stream
// module loaded (`load_module …ngx_stream_module.so`, which Debian's
// libnginx-mod-stream puts in modules-enabled).
//
// Not checked: the certificates' contents, listen conflicts, unknown
// directives other than `stream`, the error log and pid file.

import fs from 'node:fs';
import path from 'node:path';

import type { Errno, GuestFs } from '../guestview.mts';
import { findInPath, readAs, subjectOf } from '../guest-builtins.mts';
import { guestPrograms, type ExecResult, type GuestProgram } from '../guestfs.mts';
import { R_OK, type Subject } from '../idmap.mts';

const DEFAULT_CONF = '/etc/nginx/nginx.conf';

interface Directive {
  name: string;
  args: string[];
  file: string;
  line: number;
  /** Enclosing block names, outermost first. */
  context: string[];
}

class Emerg extends Error {}

const FILE_DIRECTIVES: Readonly<Record<string, 'cert' | 'key' | 'ca'>> = {
  ssl_certificate: 'cert',
  ssl_certificate_key: 'key',
  ssl_trusted_certificate: 'ca',
  ssl_client_certificate: 'ca',
  proxy_ssl_certificate: 'cert',
  proxy_ssl_certificate_key: 'key',
  proxy_ssl_trusted_certificate: 'ca',
};

const OPENSSL_REASON: Partial<Record<Errno, string>> = {
  ENOENT: 'error:80000002:system library::No such file or directory',
  EACCES: 'error:8000000D:system library::Permission denied',
  EISDIR: 'error:80000015:system library::Is a directory',
  ENOTDIR: 'error:80000014:system library::Not a directory',
};

const ERRNO_NUMBER: Partial<Record<Errno, string>> = {
  ENOENT: '2: No such file or directory',
  EACCES: '13: Permission denied',
  ENOTDIR: '20: Not a directory',
  EISDIR: '21: Is a directory',
};

function tokenize(text: string, file: string): Array<{ word: string; quoted: boolean; line: number }> {
  const out: Array<{ word: string; quoted: boolean; line: number }> = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') line++;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (c === ';' || c === '{' || c === '}') {
      out.push({ word: c, quoted: false, line });
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let word = '';
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        if (text[j] === '\n') line++;
        word += text[j];
        j++;
      }
      if (j >= text.length) throw new Emerg(`unexpected end of file, expecting ";" or "}" in ${file}:${line}`);
      out.push({ word, quoted: true, line });
      i = j + 1;
      continue;
    }
    let word = '';
    while (i < text.length && !/[\s;{}"']/.test(text[i]!)) {
      if (text[i] === '\\' && i + 1 < text.length) i++;
      word += text[i];
      i++;
    }
    out.push({ word, quoted: false, line });
  }
  return out;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

interface ParseState {
  g: GuestFs;
  subject: Subject;
  prefix: string;
  directives: Directive[];
  files: Array<{ file: string; text: string }>;
  depth: number;
}

function open(state: ParseState, file: string, from?: { file: string; line: number }): string {
  const data = readAs(state.g, state.subject, file);
  if (typeof data === 'string') {
    const where = from ? ` in ${from.file}:${from.line}` : '';
    throw new Emerg(`open() "${file}" failed (${ERRNO_NUMBER[data] ?? data})${where}`);
  }
  return data.toString('utf8');
}

function parseFile(state: ParseState, file: string, context: string[], from?: { file: string; line: number }): string[] {
  if (++state.depth > 64) throw new Emerg(`too many nested includes in ${file}`);
  const text = open(state, file, from);
  state.files.push({ file, text });
  const tokens = tokenize(text, file);
  const stack = [...context];
  let words: Array<{ word: string; line: number }> = [];
  for (const t of tokens) {
    if (t.quoted || (t.word !== ';' && t.word !== '{' && t.word !== '}')) {
      words.push(t);
      continue;
    }
    if (t.word === '}') {
      if (words.length > 0) throw new Emerg(`unexpected "}" in ${file}:${t.line}`);
      if (stack.length <= context.length) throw new Emerg(`unexpected "}" in ${file}:${t.line}`);
      stack.pop();
      continue;
    }
    if (words.length === 0) throw new Emerg(`unexpected "${t.word}" in ${file}:${t.line}`);
    const [head, ...rest] = words;
    const directive: Directive = { name: head!.word, args: rest.map((w) => w.word), file, line: head!.line, context: [...stack] };
    words = [];
    if (t.word === '{') {
      state.directives.push(directive);
      stack.push(directive.name);
      continue;
    }
    if (directive.name === 'include') {
      include(state, directive, stack);
      continue;
    }
    state.directives.push(directive);
  }
  if (words.length > 0) throw new Emerg(`unexpected end of file, expecting ";" or "}" in ${file}:${tokens[tokens.length - 1]?.line ?? 1}`);
  if (stack.length > context.length) throw new Emerg(`unexpected end of file, expecting "}" in ${file}:${tokens[tokens.length - 1]?.line ?? 1}`);
  state.depth--;
  return stack;
}

function include(state: ParseState, directive: Directive, context: string[]): void {
  const target = directive.args[0];
  if (target === undefined || directive.args.length !== 1) throw new Emerg(`invalid number of arguments in "include" directive in ${directive.file}:${directive.line}`);
  const full = target.startsWith('/') ? target : path.posix.join(state.prefix, target);
  const from = { file: directive.file, line: directive.line };
  if (!/[*?[]/.test(full)) {
    parseFile(state, full, context, from);
    return;
  }
  // glob(3) with GLOB_NOSORT off: matches in order; none is fine.
  const dir = path.posix.dirname(full);
  const pattern = globToRegExp(path.posix.basename(full));
  const loc = state.g.locate(dir, { subject: state.subject });
  if (!loc.stat?.isDirectory()) return;
  if (!state.g.permits(state.subject, loc.guest, loc.stat, R_OK)) throw new Emerg(`glob() "${full}" failed (13: Permission denied) in ${from.file}:${from.line}`);
  const names = fs.readdirSync(loc.host);
  for (const name of names.filter((n) => !n.startsWith('.') && pattern.test(n)).sort()) parseFile(state, path.posix.join(dir, name), context, from);
}

function checkFiles(state: ParseState): void {
  const loaded = state.directives.some((d) => d.name === 'load_module' && /ngx_stream_module\.so$/.test(d.args[0] ?? ''));
  const stream = state.directives.find((d) => d.name === 'stream' && d.context.length === 0);
  if (stream && !loaded) throw new Emerg(`unknown directive "stream" in ${stream.file}:${stream.line}`);
  for (const d of state.directives) {
    const kind = FILE_DIRECTIVES[d.name];
    const value = d.args[0];
    if (!kind || value === undefined || value.includes('$') || value.startsWith('data:') || value.startsWith('engine:')) continue;
    const file = value.startsWith('/') ? value : path.posix.join(state.prefix, value);
    const data = readAs(state.g, state.subject, file);
    if (typeof data !== 'string') continue;
    const bio = data === 'ENOENT' ? 'error:10000080:BIO routines::no such file' : 'error:10080002:BIO routines::system lib';
    const ssl = `${OPENSSL_REASON[data] ?? `error:80000000:system library::${data}`}:calling fopen(${file}, r) ${bio}`;
    if (kind === 'ca') throw new Emerg(`SSL_CTX_load_verify_locations("${file}") failed (SSL: ${ssl} error:05880002:x509 certificate routines::system lib)`);
    throw new Emerg(`cannot load certificate${kind === 'key' ? ' key' : ''} "${file}": BIO_new_file() failed (SSL: ${ssl})`);
  }
}

export const nginx: GuestProgram = (g, args, options): ExecResult => {
  let test = false;
  let dump = false;
  let quiet = false;
  let conf = DEFAULT_CONF;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-t') test = true;
    else if (a === '-T') test = dump = true;
    else if (a === '-q') quiet = true;
    else if (a === '-c') conf = path.posix.resolve('/', args[++i] ?? '');
    else if (a === '-p' || a === '-g' || a === '-e') i++;
    else if (a === '-v' || a === '-V') return { exit: 0, stdout: '', stderr: 'nginx version: nginx/1.24.0 (Ubuntu)\n' };
    else if (a === '-s') return { exit: 0, stdout: '', stderr: '' };
    else return { exit: 1, stdout: '', stderr: `nginx: invalid option: "${a.replace(/^-/, '')}"\n` };
  }
  // Running the server is not simulated (systemctl answers for the service).
  if (!test) return { exit: 0, stdout: '', stderr: '' };
  const state: ParseState = { g, subject: subjectOf(options), prefix: path.posix.dirname(conf), directives: [], files: [], depth: 0 };
  try {
    parseFile(state, conf, []);
    checkFiles(state);
  } catch (error) {
    if (!(error instanceof Emerg)) throw error;
    return { exit: 1, stdout: '', stderr: `nginx: [emerg] ${error.message}\nnginx: configuration file ${conf} test failed\n` };
  }
  const stderr = quiet ? '' : `nginx: the configuration file ${conf} syntax is ok\nnginx: configuration file ${conf} test is successful\n`;
  const stdout = dump ? state.files.map((f) => `# configuration file ${f.file}:\n${f.text}${f.text.endsWith('\n') ? '' : '\n'}\n`).join('') : '';
  return { exit: 0, stdout, stderr };
};

// Only where the package put the binary; elsewhere nginx stays an unmodelled program.
guestPrograms.nginx = (g, args, options) => (findInPath(g, 'nginx') ? nginx(g, args, options) : { exit: 0, stdout: '', stderr: '' });
