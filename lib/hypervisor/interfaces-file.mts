// The grammar of /etc/network/interfaces as Proxmox VE's ifupdown2 reads it
// (interfaces(5), ifupdown2's networkinterfaces.py): `#` comment lines,
// backslash continuations, and the stanzas `auto`, `allow-<class>`, `iface`
// (and ifupdown2's `vlan`), `source`. Option lines belong to the last
// `iface`/`vlan` stanza and need a key and a value. `mapping` and
// `source-directory` are classic-ifupdown stanzas that ifupdown2 does not
// understand (it reports every such line as an error), so they are errors
// here too: `ifreload -a` would fail on them.
//
// The parser keeps line numbers and line spans, so the network step can
// find (and, the first time, take over) the stanzas of the interfaces it
// manages without touching any other byte of the file.

export type StanzaKind = 'auto' | 'allow' | 'iface' | 'vlan' | 'source' | 'source-directory' | 'mapping';

export interface StanzaOption {
  key: string;
  value: string;
  /** 1-based line. */
  line: number;
}

export interface Stanza {
  kind: StanzaKind;
  /** The first word as written (`allow-hotplug`). */
  keyword: string;
  /** The words after the keyword. */
  words: string[];
  /** iface/vlan/mapping: the interface the stanza is about. */
  name?: string;
  family?: string;
  method?: string;
  options: StanzaOption[];
  /** 1-based lines of the header and of the last line of the stanza (its last option, or the header). */
  first: number;
  last: number;
}

export interface InterfacesIssue {
  /** 1-based line, when the issue has one. */
  line?: number;
  message: string;
}

export interface ParsedInterfaces {
  stanzas: Stanza[];
  errors: InterfacesIssue[];
}

const FAMILIES: Record<string, readonly string[]> = {
  inet: ['static', 'manual', 'loopback', 'dhcp', 'dhcp6', 'ppp', 'tunnel'],
  inet6: ['static', 'manual', 'loopback', 'dhcp', 'dhcp6', 'ppp', 'tunnel'],
};

/** The longest interface name the kernel takes (IFNAMSIZ - 1). */
export const MAX_IFNAME = 15;

function keywordKind(word: string): StanzaKind | undefined {
  if (word === 'auto' || word === 'iface' || word === 'vlan' || word === 'source' || word === 'source-directory' || word === 'mapping') return word;
  if (word.startsWith('allow-')) return 'allow';
  return undefined;
}

interface LogicalLine {
  text: string;
  /** 1-based line where it starts, and where it ends (continuations). */
  line: number;
  endLine: number;
}

/** Physical lines joined at trailing backslashes; comment and blank lines dropped. */
function logicalLines(text: string): LogicalLine[] {
  const physical = text.split(/\r?\n/);
  const out: LogicalLine[] = [];
  for (let i = 0; i < physical.length; i++) {
    const start = i;
    let joined = physical[i] as string;
    while (/\\\s*$/.test(joined) && i + 1 < physical.length) {
      joined = `${joined.replace(/\\\s*$/, '')} ${(physical[++i] as string).trim()}`;
    }
    const trimmed = joined.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    out.push({ text: trimmed, line: start + 1, endLine: i + 1 });
  }
  return out;
}

/** Parse an interfaces file; every problem ifupdown2 would report as an error is in `errors`. */
export function parseInterfaces(text: string): ParsedInterfaces {
  const stanzas: Stanza[] = [];
  const errors: InterfacesIssue[] = [];
  let open: Stanza | undefined;
  for (const logical of logicalLines(text)) {
    const words = logical.text.split(/\s+/);
    const first = words[0] as string;
    const kind = keywordKind(first);
    if (kind === undefined) {
      if (open === undefined || (open.kind !== 'iface' && open.kind !== 'vlan' && open.kind !== 'mapping')) {
        errors.push({ line: logical.line, message: `error processing line '${logical.text}' (an option outside any iface stanza)` });
        continue;
      }
      open.last = logical.endLine;
      if (open.kind === 'mapping') continue;
      if (words.length < 2) {
        errors.push({ line: logical.line, message: `iface ${open.name}: invalid syntax '${logical.text}' (an option needs a value)` });
        continue;
      }
      open.options.push({ key: first, value: logical.text.slice(first.length).trim(), line: logical.line });
      continue;
    }
    const stanza: Stanza = { kind, keyword: first, words: words.slice(1), options: [], first: logical.line, last: logical.endLine };
    stanzas.push(stanza);
    open = undefined;
    switch (kind) {
      case 'auto':
      case 'allow':
        if (stanza.words.length === 0) errors.push({ line: logical.line, message: `invalid ${first} line '${logical.text}' (no interface named)` });
        break;
      case 'source':
        if (stanza.words.length === 0) errors.push({ line: logical.line, message: 'unable to read source line (no file named)' });
        break;
      case 'source-directory':
      case 'mapping':
        errors.push({ line: logical.line, message: `'${first}' stanzas are not understood by ifupdown2 (Proxmox VE's ifupdown); use 'source <dir>/*' or a plain iface stanza` });
        if (kind === 'mapping') open = stanza;
        break;
      case 'iface':
      case 'vlan': {
        open = stanza;
        const [name, family, method] = stanza.words;
        if (name === undefined) {
          errors.push({ line: logical.line, message: `${first} line without an interface name` });
          break;
        }
        stanza.name = name.split(':')[0];
        if (name.length > MAX_IFNAME) errors.push({ line: logical.line, message: `${name}: interface name too long (at most ${MAX_IFNAME} characters)` });
        if (family !== undefined) {
          stanza.family = family;
          const methods = FAMILIES[family];
          if (methods === undefined) errors.push({ line: logical.line, message: `iface ${name}: unsupported address family '${family}'` });
          else if (method !== undefined && !methods.includes(method)) errors.push({ line: logical.line, message: `iface ${name}: unsupported address method '${method}'` });
          if (method !== undefined) stanza.method = method;
        }
        break;
      }
    }
  }
  errors.push(...duplicateErrors(stanzas));
  return { stanzas, errors };
}

/**
 * Two stanzas for the same interface and address family: ifupdown2 keeps
 * one (identical ones with a warning) or merges them attribute by attribute,
 * so the result depends on order. Refused, so each interface is defined once.
 */
function duplicateErrors(stanzas: readonly Stanza[]): InterfacesIssue[] {
  const seen = new Map<string, Stanza>();
  const errors: InterfacesIssue[] = [];
  for (const stanza of stanzas) {
    if ((stanza.kind !== 'iface' && stanza.kind !== 'vlan') || stanza.name === undefined) continue;
    const key = `${stanza.name} ${stanza.family ?? 'inet'}`;
    const before = seen.get(key);
    if (before !== undefined) {
      errors.push({ line: stanza.first, message: `duplicate interface ${stanza.name} (${stanza.family ?? 'inet'}): already defined at line ${before.first}` });
    } else seen.set(key, stanza);
  }
  return errors;
}

/** The iface/vlan stanzas for a name. */
export function ifaceStanzas(parsed: ParsedInterfaces, name: string): Stanza[] {
  return parsed.stanzas.filter((stanza) => (stanza.kind === 'iface' || stanza.kind === 'vlan') && stanza.name === name);
}

/** The value of an option of an interface (the first stanza that has it). */
export function optionOf(parsed: ParsedInterfaces, name: string, key: string): string | undefined {
  for (const stanza of ifaceStanzas(parsed, name)) {
    const option = stanza.options.find((candidate) => candidate.key === key);
    if (option !== undefined) return option.value;
  }
  return undefined;
}

/** One line per issue, `<file>: line N: message`, as ifupdown2 words them. */
export function formatIssues(file: string, issues: readonly InterfacesIssue[]): string[] {
  return issues.map((issue) => `${file}: ${issue.line === undefined ? '' : `line ${issue.line}: `}${issue.message}`);
}

// ---------------------------------------------------------------- taking stanzas over

/**
 * The text with the stanzas of `names` taken out: their iface/vlan stanzas
 * (header and option lines, comments between options too, and one blank line
 * after them) and their words on auto/allow lines (a line left with no
 * interface goes). Every other line is kept byte for byte. Returns the text
 * and what was taken, for the report.
 */
export function withoutInterfaces(text: string, names: ReadonlySet<string>): { text: string; taken: string[] } {
  const parsed = parseInterfaces(text);
  const lines = text.split('\n');
  const drop = new Set<number>();
  const replace = new Map<number, string>();
  const taken: string[] = [];
  for (const stanza of parsed.stanzas) {
    if ((stanza.kind === 'iface' || stanza.kind === 'vlan') && stanza.name !== undefined && names.has(stanza.name)) {
      for (let line = stanza.first; line <= stanza.last; line++) drop.add(line - 1);
      // One blank line after the stanza goes with it, so no gap is left behind.
      const next = stanza.last;
      if (next < lines.length && (lines[next] as string).trim() === '' && next !== lines.length - 1) drop.add(next);
      taken.push(`${stanza.keyword} ${stanza.words.join(' ')} (line ${stanza.first})`);
    } else if ((stanza.kind === 'auto' || stanza.kind === 'allow') && stanza.first === stanza.last && stanza.words.some((word) => names.has(word))) {
      const kept = stanza.words.filter((word) => !names.has(word));
      const index = stanza.first - 1;
      const original = lines[index] as string;
      const cr = original.endsWith('\r') ? '\r' : '';
      if (kept.length === 0) drop.add(index);
      else replace.set(index, `${original.match(/^\s*/)?.[0] ?? ''}${stanza.keyword} ${kept.join(' ')}${cr}`);
      taken.push(`${stanza.keyword} ${stanza.words.filter((word) => names.has(word)).join(' ')} (line ${stanza.first})`);
    }
  }
  const out: string[] = [];
  lines.forEach((line, index) => {
    if (!drop.has(index)) out.push(replace.get(index) ?? line);
  });
  return { text: out.join('\n'), taken };
}
