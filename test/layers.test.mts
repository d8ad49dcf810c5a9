// Two rules of the layering, checked on the source of every module under
// lib/ and scripts/:
//
// 1. pct and qm are called only through their typed wrappers, lib/pve/pct.mts and
//    lib/pve/qm.mts (on the shared lib/pve/guest-tool.mts), so every pct/qm call is classified (read-only or a change)
//    and retried in one place. No other module passes `cmd: 'pct'`, names
//    the tool through a constant, a lookup or a full path, starts it through
//    another program (`env pct …`, `bash -c 'pct …'`) or through zx.
// 2. Dry-run has one source of truth, the run context (lib/core/context.mts): no
//    other module keeps a module-level dry-run flag, reads PHOENIX_DRY_RUN
//    itself, or carries a `dryRun` copy in an options, session or context
//    object (a field of such an interface, a read of `.dryRun` on one).
//
// The source is parsed with the TypeScript compiler, so comments and log
// messages that only mention `pct create` or dry-run do not count. Each
// rule is also run on planted violations below, so a scanner that stopped
// seeing anything fails here instead of passing quietly.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { PROJECT_ROOT } from '../lib/core/bridge.mts';

const WRAPPERS = new Set([path.join('lib', 'pve', 'guest-tool.mts'), path.join('lib', 'pve', 'pct.mts'), path.join('lib', 'pve', 'qm.mts')]);
const CONTEXT_MODULE = path.join('lib', 'core', 'context.mts');

/** A command word naming pct or qm, bare or as a path. */
const GUEST_TOOL = /^(?:\S*\/)?(pct|qm)$/;
/** pct or qm as a command inside shell text. */
const GUEST_TOOL_IN_SHELL = /(?:^|[\s;&|(`])(?:\S*\/)?(?:pct|qm)(?:\s|$)/;
const SHELLS = /^(?:\S*\/)?(?:bash|sh|dash|zsh)$/;
/** Names of objects that carry options or state for a run: a dry-run copy in one is a second source of truth. */
const OPTIONS_LIKE = /^(?:options|opts|ctx|context|session|settings|config|cfg|params|init|this)$|(?:Options|Opts|Context|Ctx|Session|Settings)$/;
const OPTIONS_TYPE = /(?:Options|Opts|Context|Ctx|Session|Settings)$/;

function parse(file: string, text: string): ts.SourceFile {
  return ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

function visit(node: ts.Node, fn: (node: ts.Node) => void): void {
  fn(node);
  node.forEachChild((child) => visit(child, fn));
}

function line(sf: ts.SourceFile, node: ts.Node): number {
  return sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
}

function propertyName(name: ts.PropertyName | ts.BindingName | undefined): string | undefined {
  if (name === undefined) return undefined;
  if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNoSubstitutionTemplateLiteral(name) || ts.isPrivateIdentifier(name)) return name.text;
  return undefined;
}

/** Every variable initializer of the file by name (any scope: a name that is a tool anywhere counts). */
function initializers(sf: ts.SourceFile): Map<string, ts.Expression[]> {
  const found = new Map<string, ts.Expression[]>();
  visit(sf, (node) => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
      found.set(node.name.text, [...(found.get(node.name.text) ?? []), node.initializer]);
    }
  });
  return found;
}

/** The literal text of a string or template, placeholders as `X`. */
function literalText(expr: ts.Node): string | undefined {
  if (ts.isStringLiteral(expr) || ts.isNoSubstitutionTemplateLiteral(expr)) return expr.text;
  if (ts.isTemplateExpression(expr)) return expr.head.text + expr.templateSpans.map((s) => `X${s.literal.text}`).join('');
  return undefined;
}

/** Whether an expression may evaluate to the name or path of pct or qm. */
function namesGuestTool(expr: ts.Expression, vars: Map<string, ts.Expression[]>, seen = new Set<string>()): boolean {
  const text = literalText(expr);
  if (text !== undefined) return GUEST_TOOL.test(text.trim());
  if (ts.isParenthesizedExpression(expr) || ts.isAsExpression(expr) || ts.isNonNullExpression(expr) || ts.isSatisfiesExpression(expr) || ts.isTypeAssertionExpression(expr)) {
    return namesGuestTool(expr.expression, vars, seen);
  }
  if (ts.isConditionalExpression(expr)) return namesGuestTool(expr.whenTrue, vars, seen) || namesGuestTool(expr.whenFalse, vars, seen);
  if (ts.isBinaryExpression(expr)) {
    const op = expr.operatorToken.kind;
    if (op === ts.SyntaxKind.BarBarToken || op === ts.SyntaxKind.QuestionQuestionToken || op === ts.SyntaxKind.AmpersandAmpersandToken) {
      return namesGuestTool(expr.left, vars, seen) || namesGuestTool(expr.right, vars, seen);
    }
    // `dir + '/pct'`: what the concatenation ends with names the program.
    if (op === ts.SyntaxKind.PlusToken) return /(?:^|\/)(?:pct|qm)$/.test(literalText(expr.right) ?? '') || namesGuestTool(expr.right, vars, seen);
    return false;
  }
  if (ts.isIdentifier(expr)) {
    if (seen.has(expr.text)) return false;
    seen.add(expr.text);
    return (vars.get(expr.text) ?? []).some((init) => namesGuestTool(init, vars, seen));
  }
  // A lookup (`TOOLS[kind]`, `argv[0]`, `TOOL.lxc`) names a tool when what it looks into holds one.
  if (ts.isElementAccessExpression(expr) || ts.isPropertyAccessExpression(expr)) return namesGuestTool(expr.expression, vars, seen);
  if (ts.isObjectLiteralExpression(expr)) {
    return expr.properties.some((p) => (ts.isPropertyAssignment(p) ? namesGuestTool(p.initializer, vars, seen) : ts.isShorthandPropertyAssignment(p) ? namesGuestTool(p.name, vars, seen) : false));
  }
  if (ts.isArrayLiteralExpression(expr)) return expr.elements.some((e) => !ts.isSpreadElement(e) && namesGuestTool(e, vars, seen));
  return false;
}

/** Where a module builds a pct or qm command itself. */
export function guestToolCommands(file: string, text: string): string[] {
  const sf = parse(file, text);
  const vars = initializers(sf);
  const found: string[] = [];
  const at = (node: ts.Node, what: string) => found.push(`${file}:${line(sf, node)}: ${what}`);
  visit(sf, (node) => {
    if (ts.isPropertyAssignment(node) && propertyName(node.name) === 'cmd' && namesGuestTool(node.initializer, vars)) at(node, 'runs pct/qm directly (cmd)');
    if (ts.isShorthandPropertyAssignment(node) && node.name.text === 'cmd' && namesGuestTool(node.name, vars)) at(node, 'runs pct/qm directly (cmd)');
    if (ts.isPropertyAssignment(node) && propertyName(node.name) === 'args' && ts.isArrayLiteralExpression(node.initializer)) {
      const first = node.initializer.elements[0];
      if (first !== undefined && !ts.isSpreadElement(first) && namesGuestTool(first, vars)) at(node, 'starts pct/qm through another program (args)');
    }
    // A shell given pct/qm in its script: `bash -c 'pct …'`, or a script on stdin.
    if (ts.isObjectLiteralExpression(node)) {
      const cmd = node.properties.find((p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && propertyName(p.name) === 'cmd');
      const shell = cmd !== undefined && SHELLS.test((literalText(cmd.initializer) ?? '').trim());
      if (shell) {
        for (const p of node.properties) {
          if (!ts.isPropertyAssignment(p) || !['args', 'input'].includes(propertyName(p.name) ?? '')) continue;
          visit(p.initializer, (inner) => {
            const words = literalText(inner);
            if (words !== undefined && GUEST_TOOL_IN_SHELL.test(words)) at(inner, 'starts pct/qm through a shell');
          });
        }
      }
    }
    if (ts.isArrayLiteralExpression(node)) {
      node.elements.forEach((element, i) => {
        const previous = i > 0 ? node.elements[i - 1] : undefined;
        const script = literalText(element);
        if (previous !== undefined && /^-\w*c$/.test(literalText(previous) ?? '') && script !== undefined && GUEST_TOOL_IN_SHELL.test(script)) {
          at(element, 'starts pct/qm through a shell (-c)');
        }
      });
    }
    if (ts.isTaggedTemplateExpression(node)) {
      const words = literalText(node.template);
      if (words !== undefined && GUEST_TOOL_IN_SHELL.test(words.trimStart().split('\n')[0] ?? '')) at(node, 'runs pct/qm through a template tag');
    }
  });
  return found;
}

function receiverName(expr: ts.Expression): string | undefined {
  if (ts.isIdentifier(expr)) return expr.text;
  if (expr.kind === ts.SyntaxKind.ThisKeyword) return 'this';
  if (ts.isPropertyAccessExpression(expr)) return expr.name.text;
  if (ts.isNonNullExpression(expr) || ts.isParenthesizedExpression(expr)) return receiverName(expr.expression);
  return undefined;
}

function isTopLevel(node: ts.Node): boolean {
  return node.parent !== undefined && ts.isSourceFile(node.parent);
}

function bindingNames(name: ts.BindingName): ts.Identifier[] {
  if (ts.isIdentifier(name)) return [name];
  return name.elements.flatMap((e) => (ts.isOmittedExpression(e) ? [] : bindingNames(e.name)));
}

/** Whether a constant's value is a yes/no state (taken from the environment or the context), not a declaration. */
function holdsState(init: ts.Expression, sf: ts.SourceFile): boolean {
  if (init.kind === ts.SyntaxKind.TrueKeyword || init.kind === ts.SyntaxKind.FalseKeyword) return true;
  if (ts.isPrefixUnaryExpression(init) && init.operator === ts.SyntaxKind.ExclamationToken) return true;
  if (ts.isBinaryExpression(init)) {
    const op = init.operatorToken.kind;
    const comparisons = [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken, ts.SyntaxKind.EqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsToken];
    if (comparisons.includes(op)) return true;
  }
  return /process\.env|PHOENIX_DRY_RUN|isDryRun|runContext|\.dryRun\b/.test(init.getText(sf));
}

/** Where a module keeps or reads dry-run anywhere but in the run context. */
export function dryRunCopies(file: string, text: string): string[] {
  const sf = parse(file, text);
  const found: string[] = [];
  const at = (node: ts.Node, what: string) => found.push(`${file}:${line(sf, node)}: ${what}`);
  visit(sf, (node) => {
    // A flag of the module: `let dryRun = false`, `const DRY_RUN = process.env…`, `let state = { dryRun }`.
    if (ts.isVariableStatement(node) && isTopLevel(node)) {
      const mutable = (node.declarationList.flags & (ts.NodeFlags.Let | ts.NodeFlags.Const)) !== ts.NodeFlags.Const;
      for (const decl of node.declarationList.declarations) {
        // A variable may be set later; a constant is a flag when it holds the state, not when it declares the --dry-run option.
        const flag = mutable || (decl.initializer !== undefined && holdsState(decl.initializer, sf));
        for (const id of bindingNames(decl.name)) if (/dry/i.test(id.text) && flag) at(id, `module-level dry-run flag '${id.text}'`);
        if (mutable && decl.initializer !== undefined && ts.isObjectLiteralExpression(decl.initializer)) {
          for (const p of decl.initializer.properties) if (/dry/i.test(propertyName(p.name) ?? '')) at(p, 'module-level dry-run flag in an object');
        }
      }
    }
    if (ts.isPropertyDeclaration(node) && /dry/i.test(propertyName(node.name) ?? '') && (ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Static) !== 0) {
      at(node, 'static dry-run flag');
    }
    if (ts.isPropertyAccessExpression(node) && node.name.text === 'PHOENIX_DRY_RUN') at(node, 'reads PHOENIX_DRY_RUN itself');
    if (ts.isElementAccessExpression(node) && literalText(node.argumentExpression) === 'PHOENIX_DRY_RUN') at(node, 'reads PHOENIX_DRY_RUN itself');
    // `options.dryRun`, `session.options.dryRun`, `this.ctx.dryRun`, `opts['dryRun']`.
    if (ts.isPropertyAccessExpression(node) && node.name.text === 'dryRun' && OPTIONS_LIKE.test(receiverName(node.expression) ?? '')) {
      at(node, `reads a dryRun copy (${node.getText(sf)})`);
    }
    if (ts.isElementAccessExpression(node) && literalText(node.argumentExpression) === 'dryRun' && OPTIONS_LIKE.test(receiverName(node.expression) ?? '')) {
      at(node, `reads a dryRun copy (${node.getText(sf)})`);
    }
    // `const { dryRun } = options`, `function f({ dryRun }: Options)`.
    if (ts.isBindingElement(node) && (propertyName(node.propertyName) ?? propertyName(node.name)) === 'dryRun') {
      const pattern = node.parent;
      const owner = pattern.parent;
      const from = ts.isVariableDeclaration(owner) && owner.initializer !== undefined ? receiverName(owner.initializer) : undefined;
      if (ts.isParameter(owner) || OPTIONS_LIKE.test(from ?? '')) at(node, 'takes a dryRun copy out of an options object');
    }
    // A `dryRun` field in an options, session or context type.
    if (ts.isPropertySignature(node) && propertyName(node.name) === 'dryRun') {
      const owner = node.parent;
      const typeName = ts.isInterfaceDeclaration(owner) ? owner.name.text : ts.isTypeLiteralNode(owner) && ts.isTypeAliasDeclaration(owner.parent) ? owner.parent.name.text : undefined;
      if (OPTIONS_TYPE.test(typeName ?? '')) at(node, `carries dryRun in ${typeName}`);
    }
  });
  return found;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    else if (entry.name.endsWith('.mts')) out.push(full);
  }
  return out.sort();
}

const MODULES = [...sourceFiles(path.join(PROJECT_ROOT, 'lib')), ...sourceFiles(path.join(PROJECT_ROOT, 'scripts'))].map((file) => ({
  rel: path.relative(PROJECT_ROOT, file),
  text: fs.readFileSync(file, 'utf8'),
}));

test('the modules scanned are the whole of lib/ and scripts/', () => {
  const names = new Set(MODULES.map((m) => m.rel));
  for (const known of ['lib/pve/pct.mts', 'lib/pve/qm.mts', 'lib/core/context.mts', 'lib/pve/guest-tool.mts', 'lib/vm/lifecycle.mts', 'scripts/phoenix-cli.mts']) {
    assert.ok(names.has(path.normalize(known)), `${known} is scanned`);
  }
  assert.ok(MODULES.length > 100, `${MODULES.length} modules`);
});

test('pct and qm are called only through lib/pve/guest-tool.mts, pct.mts and qm.mts', () => {
  const found = MODULES.filter((m) => !WRAPPERS.has(m.rel)).flatMap((m) => guestToolCommands(m.rel, m.text));
  assert.equal(found, []);
});

test('the wrappers themselves are what the scan sees as pct/qm calls', () => {
  // The scanner recognises the wrappers' own calls (cmd: PCT / cmd: QM), so an empty result above means something.
  for (const rel of WRAPPERS) {
    const text = MODULES.find((m) => m.rel === rel)?.text ?? '';
    assert.ok(guestToolCommands(rel, text).length >= 5, `${rel} builds its commands`);
  }
});

test('dry-run is read from the run context only', () => {
  const found = MODULES.filter((m) => m.rel !== CONTEXT_MODULE).flatMap((m) => dryRunCopies(m.rel, m.text));
  assert.equal(found, []);
});

test('planted pct/qm commands are found, however they are built', () => {
  const plants: Array<[string, string]> = [
    ['literal', `await run({ cmd: 'pct', args: ['start', id] });`],
    ['qm literal', `await query({ cmd: "qm", args: ['status', id] });`],
    ['full path', `await run({ cmd: '/usr/sbin/qm', args: ['stop', id] });`],
    ['template', 'await run({ cmd: `pct`, args });'],
    ['constant', `const TOOL = 'pct';\nawait run({ cmd: TOOL, args });`],
    ['chosen by kind', `await run({ cmd: kind === 'lxc' ? 'pct' : 'qm', args });`],
    ['lookup', `const TOOLS = { lxc: 'pct', vm: 'qm' };\nawait run({ cmd: TOOLS[kind], args });`],
    ['shorthand', `const cmd = 'qm';\nawait run({ cmd, args });`],
    ['argv', `const argv = ['pct', 'exec', id];\nawait run({ cmd: argv[0] as string, args: argv.slice(1) });`],
    ['through env', `await run({ cmd: 'env', args: ['pct', 'set', id] });`],
    ['through timeout', `await run({ cmd: 'timeout', args: [TOOL_PATH_QM, 'start'] });\nconst TOOL_PATH_QM = '/usr/sbin/qm';`],
    ['bash -c', `await run({ cmd: 'bash', args: ['-c', \`pct set \${id} --memory 512\`] });`],
    ['script on stdin', `await run({ cmd: 'sh', args: ['-s'], input: 'set -e\\nqm start 100\\n' });`],
    ['zx', 'await $`pct start ${id}`;'],
  ];
  for (const [name, code] of plants) assert.ok(guestToolCommands('plant.mts', code).length > 0, `${name}: ${code}`);
});

test('what only mentions pct or qm is not a command', () => {
  const fine = [
    `// Every step first looks (one \`pct config\` per phase) { cmd: 'pct' }`,
    `throw new PhoenixError(\`'pct create' failed for CTID \${ctid}\`);`,
    `warn(\`qm stop \${vmid} failed (exit \${code}); trying to destroy it anyway\`);`,
    `export type GuestTool = 'pct' | 'qm';\nconst kind = tool === 'pct' ? 'CT' : 'VM';`,
    `const LOCK_RETRY_TOOLS = new Set(['pct', 'qm', 'pvesh']);`,
    `await pct.exec(ctid, ['bash', '-s'], { input: script });`,
    `await run({ cmd: 'bash', args: ['-c', 'systemctl reload nginx'] });`,
  ];
  for (const code of fine) assert.equal(guestToolCommands('fine.mts', code), [], code);
});

test('planted dry-run copies and flags are found', () => {
  const plants: Array<[string, string]> = [
    ['module flag', `let dryRun = false;\nexport function configure(d: boolean) { dryRun = d; }`],
    ['module flag from the environment', `const DRY_RUN = process.env.PHOENIX_DRY_RUN === 'true';`],
    ['module flag taken once from the context', `const dry = runContext().dryRun;`],
    ['module constant', `export const DRY_RUN = false;`],
    ['module variable', `let dryRunPlanned: boolean | undefined;`],
    ['module state object', `let state = { dryRun: false };`],
    ['static flag', `class Runner { static dryRun = false; }`],
    ['environment', `if (env['PHOENIX_DRY_RUN'] === 'true') plan();`],
    ['options', `if (options.dryRun) return;`],
    ['session options', `if (!session.options.dryRun) writeRecord(record);`],
    ['context', `const reachable = !ctx.options.dryRun || running;`],
    ['this.ctx', `class F { run() { if (this.ctx.dryRun) return; } }`],
    ['opts element', `if (opts['dryRun']) return;`],
    ['named options', `if (runOptions.dryRun) return;`],
    ['destructured', `const { dryRun } = options;`],
    ['destructured parameter', `function go({ dryRun, id }: { dryRun: boolean; id: string }) { return dryRun ? id : ''; }`],
    ['interface field', `export interface RunScriptOptions { env: Record<string, string>; dryRun: boolean; }`],
    ['type field', `type FeatureContext = { dryRun?: boolean };`],
  ];
  for (const [name, code] of plants) assert.ok(dryRunCopies('plant.mts', code).length > 0, `${name}: ${code}`);
});

test('reading the run context, and saying dry-run in text, is fine', () => {
  const fine = [
    `import { isDryRun, runContext } from './context.mts';\nif (isDryRun()) info('DRY-RUN: would remove x');\nconst { recordFile } = runContext();`,
    `const USAGE = \`Usage: vm-manager.sh <action> <vmid> [--dry-run]\`;`,
    `const DRY_RUN: FlagSpec = { type: 'boolean' };\nconst DRY_RUN_NOTE = '--- DRY RUN MODE: nothing will be changed ---';`,
    `// options.dryRun used to be read here; PHOENIX_DRY_RUN too`,
    `withRunContext({ dryRun: flags['dry-run'] === true }, body);`,
    `function planned(): boolean {\n  const dry = runContext().dryRun;\n  return dry;\n}`,
  ];
  for (const code of fine) assert.equal(dryRunCopies('fine.mts', code), [], code);
});

test.run();
