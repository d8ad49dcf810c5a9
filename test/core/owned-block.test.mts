import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { ensureOwnedBlock, locateOwnedBlock, replaceOwnedBlock, OwnedBlockError, ORIGINAL_SUFFIX, type EnsureOwnedBlockSpec } from '../../lib/core/owned-block.mts';
import { setProcessContext } from '../../lib/core/context.mts';
import { configureLog } from '../../lib/core/log.mts';
import { tmpDir } from '../helpers/tmp.mts';

const logged: string[] = [];
configureLog({ file: undefined, write: (line: string) => void logged.push(line) });
const dir = tmpDir();
const mode = (file: string) => fs.statSync(file).mode & 0o7777;
let fileCounter = 0;
/** A fresh file in its own directory, so a directory listing shows every file the code left. */
function fileWith(content: string | Buffer, fileMode = 0o644): string {
  fileCounter += 1;
  const sub = path.join(dir, `case-${fileCounter}`);
  fs.mkdirSync(sub);
  const file = path.join(sub, 'shared.conf');
  fs.writeFileSync(file, content, { mode: fileMode });
  fs.chmodSync(file, fileMode);
  return file;
}

const MARKERS = { begin: '# BEGIN phoenix: test', end: '# END phoenix: test' };
const spec = (lines: string[] | undefined, extra: Partial<EnsureOwnedBlockSpec> = {}): EnsureOwnedBlockSpec => ({ ...MARKERS, lines, ...extra });
const BLOCK = '# BEGIN phoenix: test\nnew 1\nnew 2\n# END phoenix: test\n';

test.before.each(() => {
  setProcessContext({ dryRun: false });
  logged.length = 0;
});

// ------------------------------------------------------------------ the text

test('the block is replaced where it is; every byte around it stays (CRLF, trailing blanks, tabs, other blocks, blank lines, no final newline)', () => {
  const before = 'first line  \r\n\tindented\r\n\n\n; other tool\n# BEGIN other\nkeep me\n# END other\n\n';
  const after = '\n\ntrailing blanks \t\nlast line without newline';
  const text = `${before}# BEGIN phoenix: test\nold\n# END phoenix: test\n${after}`;
  assert.is(replaceOwnedBlock(text, spec(['new 1', 'new 2'])), before + BLOCK + after);
});

test('a block in the middle of the file stays in the middle', () => {
  const text = `a\n${BLOCK}b\n`;
  assert.is(replaceOwnedBlock(text, spec(['x'])), 'a\n# BEGIN phoenix: test\nx\n# END phoenix: test\nb\n');
});

test('an absent block is appended, after a line end only when the text lacks one', () => {
  assert.is(replaceOwnedBlock('a\n', spec(['new 1', 'new 2'])), `a\n${BLOCK}`);
  assert.is(replaceOwnedBlock('a', spec(['new 1', 'new 2'])), `a\n${BLOCK}`);
  assert.is(replaceOwnedBlock('a\n\n', spec(['new 1', 'new 2'])), `a\n\n${BLOCK}`);
  assert.is(replaceOwnedBlock('', spec(['new 1', 'new 2'])), BLOCK);
});

test('a file with CRLF line ends gets its block with CRLF; a replaced block keeps its own line ends', () => {
  assert.is(replaceOwnedBlock('a\r\nb', spec(['x'])), 'a\r\nb\r\n# BEGIN phoenix: test\r\nx\r\n# END phoenix: test\r\n');
  const crlfBlock = 'a\n# BEGIN phoenix: test\r\nold\r\n# END phoenix: test\r\nb\n';
  assert.is(replaceOwnedBlock(crlfBlock, spec(['x', 'y'])), 'a\n# BEGIN phoenix: test\r\nx\r\ny\r\n# END phoenix: test\r\nb\n');
});

test('a block at the very end without a final newline is replaced without adding one', () => {
  assert.is(replaceOwnedBlock('a\n# BEGIN phoenix: test\nold\n# END phoenix: test', spec(['x'])), 'a\n# BEGIN phoenix: test\nx\n# END phoenix: test');
});

test('removal takes out the block and only the block; absent stays absent; without removal an empty block is kept', () => {
  const text = `a  \r\n\n${BLOCK}\nb`;
  assert.is(replaceOwnedBlock(text, spec(undefined, { removeWhenEmpty: true })), 'a  \r\n\n\nb');
  assert.is(replaceOwnedBlock(text, spec([], { removeWhenEmpty: true })), 'a  \r\n\n\nb');
  assert.is(replaceOwnedBlock('a\nb', spec([], { removeWhenEmpty: true })), 'a\nb');
  assert.is(replaceOwnedBlock(text, spec([])), 'a  \r\n\n# BEGIN phoenix: test\n# END phoenix: test\n\nb');
});

test('idempotent: applying the same block twice gives the text of applying it once', () => {
  const inputs = ['', 'a', 'a\n', 'a\r\nb\r\n', `x\n${BLOCK}y`, 'a\n# BEGIN phoenix: test\nold\n# END phoenix: test'];
  for (const input of inputs) {
    for (const s of [spec(['n']), spec([], { removeWhenEmpty: true }), spec([])]) {
      const once = replaceOwnedBlock(input, s);
      assert.is(replaceOwnedBlock(once, s), once, JSON.stringify({ input, s }));
    }
  }
});

test('a marker line with trailing blanks left by an editor is still the marker: replaced, not duplicated', () => {
  const text = 'a\n# BEGIN phoenix: test  \nold\n# END phoenix: test\t\nb\n';
  assert.is(replaceOwnedBlock(text, spec(['x'])), 'a\n# BEGIN phoenix: test\nx\n# END phoenix: test\nb\n');
});

test('markers of another block, or a marker only as part of a line, are not ours', () => {
  const text = '## BEGIN phoenix: test\nx # END phoenix: test\n# BEGIN phoenix: testing\n# END phoenix: testing\n';
  assert.is(locateOwnedBlock(text, MARKERS), undefined);
  assert.is(replaceOwnedBlock(text, spec(['y'])), `${text}# BEGIN phoenix: test\ny\n# END phoenix: test\n`);
});

test('locate gives the text around the block and its lines', () => {
  const found = locateOwnedBlock(`a\n${BLOCK}b`, MARKERS);
  assert.equal(found && { before: found.before, after: found.after, lines: found.lines, at: [found.beginLine, found.endLine] }, {
    before: 'a\n',
    after: 'b',
    lines: ['new 1', 'new 2'],
    at: [2, 5],
  });
});

// ------------------------------------------------------------------ refusals

function refusal(text: string, line: number, pattern: RegExp): void {
  try {
    replaceOwnedBlock(text, spec(['x']), '/etc/exports');
  } catch (err) {
    assert.instance(err, OwnedBlockError);
    assert.is((err as OwnedBlockError).line, line);
    assert.match((err as Error).message, `/etc/exports, line ${line}: `);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`no refusal for ${JSON.stringify(text)}`);
}

test('refused, naming file and line: BEGIN without END, END without BEGIN, two blocks, nested blocks', () => {
  refusal('a\n# BEGIN phoenix: test\nb\n', 2, /without a '# END phoenix: test' after it/);
  refusal('a\nb\n# END phoenix: test\n', 3, /without a '# BEGIN phoenix: test' before it/);
  refusal(`${BLOCK}# END phoenix: test\n`, 5, /without a '# BEGIN phoenix: test' before it/);
  refusal(`${BLOCK}x\n${BLOCK}`, 6, /a second block .* the first is at lines 1-4/);
  refusal('# BEGIN phoenix: test\n# BEGIN phoenix: test\n# END phoenix: test\n# END phoenix: test\n', 2, /inside the block opened at line 1/);
});

test('refused: a block line that is a marker or holds a line break, and unusable markers', () => {
  assert.throws(() => replaceOwnedBlock('', spec(['# END phoenix: test'])), /is one of its markers/);
  assert.throws(() => replaceOwnedBlock('', spec(['a\nb'])), /holds a line break/);
  assert.throws(() => replaceOwnedBlock('', { begin: '# X', end: '# X', lines: [] }), /are the same/);
  assert.throws(() => replaceOwnedBlock('', { begin: '# X\n', end: '# Y', lines: [] }), /BEGIN marker must be one line/);
  assert.throws(() => replaceOwnedBlock('', { begin: '# X', end: ' # Y', lines: [] }), /END marker must be one line/);
});

// ------------------------------------------------------------------ the file

test('on disk: bytes that are not UTF-8 and the mode survive; the second call is unchanged', () => {
  const original = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9, 0xff, 0x0d, 0x0a]), Buffer.from('tail \t')]);
  const file = fileWith(original, 0o640);
  assert.is(ensureOwnedBlock(file, spec(['entrée'])), 'changed');
  const expected = Buffer.concat([original, Buffer.from('\r\n# BEGIN phoenix: test\r\nentrée\r\n# END phoenix: test\r\n')]);
  assert.is(fs.readFileSync(file).toString('hex'), expected.toString('hex'));
  assert.is(mode(file), 0o640);
  assert.is(ensureOwnedBlock(file, spec(['entrée'])), 'unchanged');
  assert.is(fs.readFileSync(file).toString('hex'), expected.toString('hex'));
});

test('on disk: the owner is kept (as root: a file owned by another user stays theirs)', () => {
  const file = fileWith('a\n');
  if (process.getuid?.() === 0) fs.chownSync(file, 1234, 2345);
  const owner = fs.statSync(file);
  ensureOwnedBlock(file, spec(['x']));
  const now = fs.statSync(file);
  assert.equal([now.uid, now.gid], [owner.uid, owner.gid]);
  if (process.getuid?.() === 0) assert.equal([mode(file + ORIGINAL_SUFFIX), fs.statSync(file + ORIGINAL_SUFFIX).uid], [0o644, 1234]);
});

test('a missing file is created only when allowed, with the given mode; removing from a missing file creates nothing', () => {
  const sub = path.join(dir, 'missing');
  fs.mkdirSync(sub);
  const file = path.join(sub, 'exports');
  assert.throws(() => ensureOwnedBlock(file, spec(['x'])), (err: unknown) => err instanceof OwnedBlockError && /exports: does not exist/.test(err.message));
  assert.equal(fs.readdirSync(sub), []);
  assert.is(ensureOwnedBlock(file, spec([], { removeWhenEmpty: true, createMode: 0o600 })), 'unchanged');
  assert.equal(fs.readdirSync(sub), []);
  assert.is(ensureOwnedBlock(file, spec(['x'], { createMode: 0o600 })), 'created');
  assert.is(fs.readFileSync(file, 'utf8'), '# BEGIN phoenix: test\nx\n# END phoenix: test\n');
  assert.is(mode(file), 0o600);
  assert.equal(fs.readdirSync(sub), ['exports'], 'nothing to keep of a file that was not there');
});

test('the original is kept once, before the first change, with its mode; later changes never replace it', () => {
  const file = fileWith('operator line\n', 0o600);
  const copy = file + ORIGINAL_SUFFIX;
  assert.is(ensureOwnedBlock(file, spec(['one'])), 'changed');
  assert.is(fs.readFileSync(copy, 'utf8'), 'operator line\n');
  assert.is(mode(copy), 0o600);
  assert.ok(logged.some((line) => line.includes(`Kept the original of ${file} as ${copy}`)));
  // The operator edits around the block, Phoenix changes the block, then removes it: the copy stays the original.
  fs.writeFileSync(file, `edited\n${fs.readFileSync(file, 'utf8')}`);
  assert.is(ensureOwnedBlock(file, spec(['two'])), 'changed');
  assert.is(ensureOwnedBlock(file, spec([], { removeWhenEmpty: true })), 'changed');
  assert.is(fs.readFileSync(file, 'utf8'), 'edited\noperator line\n');
  assert.is(fs.readFileSync(copy, 'utf8'), 'operator line\n');
  // With the block gone the file holds no block again, but an original is never replaced.
  fs.writeFileSync(file, 'later\n');
  assert.is(ensureOwnedBlock(file, spec(['three'])), 'changed');
  assert.is(fs.readFileSync(copy, 'utf8'), 'operator line\n');
  assert.equal(fs.readdirSync(path.dirname(file)).sort(), ['shared.conf', `shared.conf${ORIGINAL_SUFFIX}`], 'one copy, no temporary files');
});

test('no copy when nothing changes, nor when the file already holds the block', () => {
  const unchanged = fileWith(`a\n${BLOCK}`);
  assert.is(ensureOwnedBlock(unchanged, spec(['new 1', 'new 2'])), 'unchanged');
  assert.not.ok(fs.existsSync(unchanged + ORIGINAL_SUFFIX));
  const removeAbsent = fileWith('a\n');
  assert.is(ensureOwnedBlock(removeAbsent, spec([], { removeWhenEmpty: true })), 'unchanged');
  assert.not.ok(fs.existsSync(removeAbsent + ORIGINAL_SUFFIX));
  // A block already there means the file is no longer the operator's original.
  const owned = fileWith(`a\n${BLOCK}`);
  assert.is(ensureOwnedBlock(owned, spec(['other'])), 'changed');
  assert.not.ok(fs.existsSync(owned + ORIGINAL_SUFFIX));
});

test('dry-run writes nothing, keeps no copy, and says what would change', () => {
  const file = fileWith('a\n');
  setProcessContext({ dryRun: true });
  assert.is(ensureOwnedBlock(file, spec(['x'])), 'changed');
  const missing = path.join(path.dirname(file), 'new.conf');
  assert.is(ensureOwnedBlock(missing, spec(['x'], { createMode: 0o644 })), 'created');
  assert.is(fs.readFileSync(file, 'utf8'), 'a\n');
  assert.equal(fs.readdirSync(path.dirname(file)), ['shared.conf']);
  assert.ok(logged.some((line) => line.includes(`DRY-RUN: would keep the original of ${file}`)));
  assert.ok(logged.some((line) => line.includes(`DRY-RUN: would write ${file}`)));
});

test('broken markers on disk: refused with file and line, nothing written, no copy', () => {
  const text = 'a\n# END phoenix: test\n# BEGIN phoenix: test\nb\n';
  const file = fileWith(text);
  assert.throws(() => ensureOwnedBlock(file, spec(['x'], { createMode: 0o644 })), (err: unknown) => err instanceof OwnedBlockError && err.message.startsWith(`${file}, line 2: `));
  assert.is(fs.readFileSync(file, 'utf8'), text);
  assert.equal(fs.readdirSync(path.dirname(file)), ['shared.conf']);
});

test('a symbolic link is followed: the file it points to is edited, the link stays a link', () => {
  const real = fileWith('a\n');
  const link = path.join(path.dirname(real), 'link.conf');
  fs.symlinkSync('shared.conf', link);
  assert.is(ensureOwnedBlock(link, spec(['x'])), 'changed');
  assert.ok(fs.lstatSync(link).isSymbolicLink());
  assert.is(fs.readFileSync(real, 'utf8'), 'a\n# BEGIN phoenix: test\nx\n# END phoenix: test\n');
  assert.is(fs.readFileSync(real + ORIGINAL_SUFFIX, 'utf8'), 'a\n');
});

test.run();
