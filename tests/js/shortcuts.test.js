// The inbox's keyboard shortcuts: which key does what, and never while typing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { SHORTCUTS, shortcutFor } from "../../src/handoff/web/static/inbox/shortcuts.js";

const onPage = { tagName: "BODY" };
const press = (key, extra = {}) => shortcutFor({ key, target: onPage, ...extra });

describe("shortcuts", () => {
  it("maps each listed key to its action", () => {
    for (const [key, , action] of SHORTCUTS) assert.equal(press(key), action);
    assert.equal(press("x"), null);
  });

  it("ignores keys typed into a field or an editable element", () => {
    for (const tagName of ["INPUT", "TEXTAREA", "SELECT"]) {
      assert.equal(shortcutFor({ key: "s", target: { tagName } }), null);
    }
    assert.equal(shortcutFor({ key: "s", target: { tagName: "DIV", isContentEditable: true } }), null);
  });

  it("leaves the browser's own combinations and handled keys alone", () => {
    assert.equal(press("r", { ctrlKey: true }), null);
    assert.equal(press("r", { metaKey: true }), null);
    assert.equal(press("r", { altKey: true }), null);
    assert.equal(press("r", { defaultPrevented: true }), null);
  });

  it("lists each key once", () => {
    const keys = SHORTCUTS.map(([key]) => key);
    assert.equal(new Set(keys).size, keys.length);
  });
});
