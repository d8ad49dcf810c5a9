// One manifest rule → one rule line, checked against what pve-firewall's
// parser and verify_rule accept (PVE's own spelling and order: `-i`,
// `-source`, `-dest`, `-p`, `-dport`, `-sport`, `-log`, `-icmp-type`). A
// rule pve-firewall would skip is an error here, before anything is
// written, never a silent hole in the rule set.

import { PhoenixError } from '../core/errors.mts';
import { parseAddressList, portProblem, referenceProblem } from './addresses.mts';
import {
  ACTIONS,
  LOG_LEVELS,
  NAME,
  GROUP_NAME,
  MAX_GROUP_NAME,
  IFACE,
  PROTOCOL_NUMBERS,
  PROTOCOL_IDS,
  PORT_PROTOCOLS,
  ICMP_PROTOCOLS,
  ICMP_TYPES,
  ICMPV6_TYPES,
  MACROS,
  type RuleEnv,
  type RuleSpec,
  type RuleContext,
  type RuleProblem,
  type CheckedRule,
} from './grammar.mts';

export type { RuleEnv, RuleSpec, NameScope, RuleContext, RuleProblem, CheckedRule } from './grammar.mts';


/** Render one rule, or throw with every problem it has. */
export function renderRule(rule: RuleSpec, context: RuleEnv | RuleContext = 'cluster'): string {
  const checked = checkRule(rule, typeof context === 'string' ? { env: context } : context);
  if (checked.problems.length > 0) {
    throw new PhoenixError(`invalid firewall rule: ${checked.problems.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join('; ')}`);
  }
  return checked.line;
}

/** The rule line pve-firewall would read, and why it would not (empty when it would). */
export function checkRule(rule: RuleSpec, context: RuleContext): CheckedRule {
  const problems: RuleProblem[] = [];
  const problem = (field: string, message: string): void => {
    problems.push({ field, message });
  };
  const guest = context.env === 'vm' || context.env === 'ct';

  const type = String(rule.type ?? '').toLowerCase();
  const allowedTypes = guest ? ['in', 'out', 'group'] : ['in', 'out', 'forward', 'group'];
  if (!allowedTypes.includes(type)) {
    problem('type', type === 'forward' ? 'forward rules are not allowed in a guest firewall' : `expected one of ${allowedTypes.join(', ')}, got ${JSON.stringify(rule.type)}`);
  }

  let head: string;
  if (type === 'group') {
    const name = String(rule.action ?? '');
    if (!GROUP_NAME.test(name) || name.length > MAX_GROUP_NAME) {
      problem('action', `security group name ${JSON.stringify(name)} must match ${NAME} and have at most ${MAX_GROUP_NAME} characters`);
    } else if (context.cluster && !context.cluster.groups.has(name)) {
      problem('action', `no security group ${JSON.stringify(name)} in cluster.fw${context.cluster.groups.has(name.toLowerCase()) ? ' (pve-firewall keys groups in lower case; write it in lower case)' : ''}`);
    }
    for (const field of ['macro', 'proto', 'source', 'dest', 'port', 'sport', 'icmp_type', 'log'] as const) {
      if (present(rule[field])) problem(field, 'a security-group rule takes only an interface (-i); set this in the group');
    }
    head = `GROUP ${name}`;
  } else {
    const action = String(rule.action ?? '').toUpperCase();
    if (!ACTIONS.has(action)) problem('action', `expected ACCEPT, DROP or REJECT, got ${JSON.stringify(rule.action)}`);
    if (type === 'forward' && action === 'REJECT') problem('action', 'REJECT is not allowed on the forward chain');
    let verb = action;
    if (present(rule.macro)) {
      const macro = MACROS.get(rule.macro.toLowerCase());
      if (!macro) problem('macro', `unknown macro ${JSON.stringify(rule.macro)}`);
      verb = `${macro ?? rule.macro}(${action})`;
    }
    head = `${type.toUpperCase()} ${verb}`;
  }

  const parts: string[] = [head];
  if (present(rule.iface)) {
    const iface = guestInterface(rule.iface, context, problem);
    parts.push(`-i ${iface}`);
  }

  if (type !== 'group') {
    const proto = present(rule.proto) ? rule.proto : undefined;
    let version: 4 | 6 | undefined;
    const setVersion = (v: 4 | 6 | undefined, field: string): void => {
      if (v === undefined) return;
      if (version !== undefined && v !== version) problem(field, 'mixes IPv4 and IPv6 in one rule');
      else version = v;
    };
    if (proto !== undefined) {
      if (!Object.hasOwn(PROTOCOL_NUMBERS, proto) && proto !== 'icmpv6' && !PROTOCOL_IDS.has(proto)) problem('proto', `unknown protocol ${JSON.stringify(proto)}`);
      if (proto === 'icmp') setVersion(4, 'proto');
      if (proto === 'icmpv6' || proto === 'ipv6-icmp') setVersion(6, 'proto');
    }
    const icmp = proto !== undefined && ICMP_PROTOCOLS.has(proto);

    for (const field of ['source', 'dest'] as const) {
      const value = rule[field];
      if (!present(value)) continue;
      const parsed = parseAddressList(value);
      if (typeof parsed === 'string') problem(field, parsed);
      else {
        setVersion(parsed.kind === 'list' ? parsed.version : undefined, field);
        const missing = referenceProblem(parsed, context);
        if (missing) problem(field, missing);
      }
      parts.push(`-${field} ${value}`);
    }
    if (proto !== undefined) parts.push(`-p ${proto}`);
    for (const [field, flag] of [['port', 'dport'], ['sport', 'sport']] as const) {
      const value = rule[field];
      if (!present(value)) continue;
      if (proto === undefined) problem('proto', `required when ${field} is set`);
      else if (icmp) problem(field, `ICMP has no ports${field === 'port' ? '; use icmp_type' : ''}`);
      else if (!PORT_PROTOCOLS.has(proto)) problem(field, `protocol ${proto} has no ports`);
      const bad = portProblem(value);
      if (bad) problem(field, bad);
      parts.push(`-${flag} ${value}`);
    }
    if (present(rule.log)) {
      if (!LOG_LEVELS.has(rule.log)) problem('log', `expected one of ${[...LOG_LEVELS].join(', ')}, got ${JSON.stringify(rule.log)}`);
      parts.push(`-log ${rule.log}`);
    }
    if (present(rule.icmp_type)) {
      const names = proto === 'icmp' ? ICMP_TYPES : ICMPV6_TYPES;
      if (!icmp) problem('proto', 'icmp_type needs proto icmp, icmpv6 or ipv6-icmp');
      else if (!names.has(rule.icmp_type)) problem('icmp_type', `unknown ${proto} type ${JSON.stringify(rule.icmp_type)}`);
      parts.push(`-icmp-type ${rule.icmp_type}`);
    }
  }

  if (rule.comment !== undefined) {
    // pve-firewall ends the rule at the first '#' and trims the comment; a
    // line break would start a new (broken) line in the file.
    if (/[\u0000-\u001f\u007f]/.test(rule.comment)) problem('comment', 'must be one line without control characters');
    const comment = rule.comment.trim();
    if (comment !== '') parts.push(`# ${comment}`);
  }
  for (const part of parts.slice(1)) {
    // Every value is one word to pve-firewall's parser: a space would shift
    // the rest of the line into the next option or make it unparsable.
    if (!part.startsWith('#') && /\s/.test(part.slice(part.indexOf(' ') + 1))) {
      problems.push({ field: fieldOfFlag(part), message: 'must not contain spaces' });
    }
  }
  const line = `${rule.enable === false ? '|' : ''}${parts.join(' ')}`;
  return { line, problems: dedupe(problems) };
}

export function present(value: string | undefined): value is string {
  return value !== undefined && value !== '';
}

function fieldOfFlag(part: string): string {
  const flag = part.slice(1, part.indexOf(' '));
  return ({ i: 'iface', p: 'proto', dport: 'port', 'icmp-type': 'icmp_type' } as Record<string, string>)[flag] ?? flag;
}

function dedupe(problems: RuleProblem[]): RuleProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.field}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function guestInterface(iface: string, context: RuleContext, problem: (field: string, message: string) => void): string {
  if (context.env !== 'vm' && context.env !== 'ct') {
    if (!IFACE.test(iface)) problem('iface', `invalid interface name ${JSON.stringify(iface)}`);
    return iface;
  }
  if (/^net\d+$/.test(iface)) return iface;
  // Inside a guest file pve-firewall wants the Proxmox device (net0), not
  // the name the container gives it (eth0).
  const mapped = context.interfaces?.[iface];
  if (mapped) return mapped;
  problem('iface', `a guest rule names its interface as netN (net0, net1…)${context.env === 'ct' ? ' or by the container name in network_config' : ''}, got ${JSON.stringify(iface)}`);
  return iface;
}
