'use strict';
// index.d.ts must describe the runtime exactly: every runtime export is declared and
// every declared value exists (tsc additionally compiles test/types/usage.ts against it).
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { snap2p } = require('./helpers');

const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');

test('the exported values of index.js are exactly those declared in index.d.ts', () => {
  const declared = new Set(
    [...dts.matchAll(/^export declare (?:class|function|const) (\w+)/gm)].map((m) => m[1]),
  );
  assert.deepStrictEqual([...Object.keys(snap2p)].sort(), [...declared].sort());
});

test('declared class members exist at run time', () => {
  const classes = [...dts.matchAll(/^export declare class (\w+)[^{]*\{([\s\S]*?)^\}/gm)];
  assert.ok(classes.length >= 6);
  for (const [, name, body] of classes) {
    const cls = snap2p[name];
    const members = [...body.matchAll(/^ {2}(static )?(?:readonly )?(\w+)[(:?<]/gm)];
    for (const [, isStatic, member] of members) {
      if (member === 'constructor' || member === 'on' || member === 'once') continue;
      const where = isStatic ? cls : cls.prototype;
      const found = member in where || dts.includes(`this.${member}`);
      // Instance fields set in constructors (remotePrincipal, id, …) are not on the
      // prototype: check them by name in index.js.
      const src = fs.readFileSync(path.join(__dirname, '..', 'index.js'), 'utf8');
      assert.ok(found || src.includes(`this.${member} =`), `${name}.${member} is declared but missing`);
    }
  }
  assert.deepStrictEqual(
    Object.keys(snap2p.ErrorCode).sort(),
    [...dts.matchAll(/^ {2}(OK|ERR_\w+): (\d+);/gm)].map((m) => m[1]).sort(),
  );
  for (const [, n, v] of dts.matchAll(/^ {2}(OK|ERR_\w+): (\d+);/gm)) {
    assert.strictEqual(snap2p.ErrorCode[n], Number(v), n);
  }
});
