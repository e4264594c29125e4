// Canned replies in the reply box: found by what is typed, inserted where the caret is.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { insertCanned, matchCanned, slashQuery } from "../../src/handoff/web/static/inbox/canned.js";

const REPLIES = [
  { id: "1", title: "Refund policy", text: "Hi Jane, refunds take 5 days." },
  { id: "2", title: "Password reset", text: "Use the link to reset." },
  { id: "3", title: "Café hours", text: "We open at nine." },
  { id: "4", title: "Shipping", text: "Parcels leave within a day; a refund is possible." },
];
const titles = (list) => list.map((r) => r.title);

describe("canned replies", () => {
  it("lists every reply when nothing is typed", () => {
    assert.deepEqual(titles(matchCanned(REPLIES, "  ")), titles(REPLIES));
  });

  it("ranks title starts, then title words, then texts", () => {
    assert.deepEqual(titles(matchCanned(REPLIES, "ref")), ["Refund policy", "Shipping"]);
    assert.deepEqual(titles(matchCanned(REPLIES, "reset")), ["Password reset"]);
    assert.deepEqual(titles(matchCanned(REPLIES, "zzz")), []);
  });

  it("ignores case and accents", () => {
    assert.deepEqual(titles(matchCanned(REPLIES, "CAFE")), ["Café hours"]);
  });

  it("opens on a lone slash word only", () => {
    assert.equal(slashQuery("/"), "");
    assert.equal(slashQuery("/refund"), "refund");
    assert.equal(slashQuery("hi /refund"), null);
    assert.equal(slashQuery("/refund now"), null);
    assert.equal(slashQuery(""), null);
  });

  it("replaces the selection, or the slash word that opened the picker", () => {
    assert.deepEqual(insertCanned("Hello  bye", 6, 6, "X"), { value: "Hello X bye", caret: 7 });
    assert.deepEqual(insertCanned("Hello there", 6, 11, "you"), { value: "Hello you", caret: 9 });
    assert.deepEqual(insertCanned("/ref", 4, 4, "Refunds take 5 days."), { value: "Refunds take 5 days.", caret: 20 });
  });
});
