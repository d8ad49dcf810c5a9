// The Proxmox firewall files, generated from the manifests.
//
// Three layers, so each can be tested on its own:
// - rules: one manifest rule → one rule line, checked against what
//   pve-firewall's parser and verify_rule accept (PVE's own spelling and
//   order: `-i`, `-source`, `-dest`, `-p`, `-dport`, `-sport`, `-log`,
//   `-icmp-type`). A rule pve-firewall would skip is an error here, before
//   anything is written, never a silent hole in the rule set.
// - files: the manifests → cluster.fw, nodes/<node>/host.fw and one
//   <id>.fw per guest with a `firewall` block. Pure: the current files come
//   in through a reader, because sections an operator keeps there
//   ([ALIASES], [IPSET …], [group …]) are carried over and rules may name them.
// - apply: ownership (a marker line), atomic writes, removal of stale
//   Phoenix files, `pve-firewall compile` and a restart only after a change.
//
// The layers live in lib/firewall/: rules.mts and addresses.mts (a rule),
// files.mts and advice.mts (the files and the warnings), apply.mts.

export { renderRule, checkRule, type RuleEnv, type RuleSpec, type NameScope, type RuleContext, type RuleProblem, type CheckedRule } from './firewall/rules.mts';
export { parseAddressList, portProblem, type AddressList, type AddressItem } from './firewall/addresses.mts';
export { MARKER, ownership, type FileKind, planFirewall, keptSections, type Ownership, type PlannedFile, type FirewallPlan, type PlanOptions } from './firewall/files.mts';
export { applyFirewall, applyGuestFirewall, parseCompileOutput, type ApplyOptions, type FileResult, type CompileProblem, type ApplyResult } from './firewall/apply.mts';
