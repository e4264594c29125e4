// The inbox's reply box: reply or note, closed for replies on a solved ticket, and when the
// visitor may be told that someone is typing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { TYPING_PING_MS, composerView, mayPingTyping } from "../../src/handoff/web/static/inbox/composer.js";

const OPEN = { id: 1, status: "open", contact: { name: "Jane" } };
const SOLVED = { ...OPEN, status: "solved" };

describe("composer", () => {
  it("replies to the contact by name, sendable once something is typed", () => {
    const empty = composerView({ ticket: OPEN, mode: "reply", sending: false, text: "  " });
    assert.equal(empty.placeholder, "Reply to Jane… they see it live in the chat");
    assert.equal(empty.sendLabel, "Send reply");
    assert.equal(empty.sendDisabled, true);
    assert.equal(empty.notice, "");
    assert.equal(composerView({ ticket: OPEN, mode: "reply", sending: false, text: "Hi" }).sendDisabled, false);
    assert.equal(composerView({ ticket: OPEN, mode: "reply", sending: true, text: "Hi" }).sendDisabled, true);
  });

  it("closes replies on a solved ticket and says why, notes stay open", () => {
    const reply = composerView({ ticket: SOLVED, mode: "reply", sending: false, text: "Hi" });
    assert.equal(reply.inputDisabled, true);
    assert.equal(reply.sendDisabled, true);
    assert.equal(reply.placeholder, "This ticket is solved.");
    assert.match(reply.notice, /solved/);
    const note = composerView({ ticket: SOLVED, mode: "note", sending: false, text: "Checked" });
    assert.equal(note.inputDisabled, false);
    assert.equal(note.sendDisabled, false);
    assert.equal(note.sendLabel, "Add note");
    assert.equal(note.inputLabel, "Internal note");
    assert.equal(note.notice, "");
  });

  it("has no ticket to talk about before one loads", () => {
    const view = composerView({ ticket: null, mode: "reply", sending: false, text: "" });
    assert.equal(view.placeholder, "Reply to Visitor… they see it live in the chat");
    assert.equal(view.sendDisabled, true);
  });
});

describe("typing pings", () => {
  const typing = { ticket: OPEN, mode: "reply", sending: false, text: "Hel", lastPing: 0, now: 10_000 };

  it("announce a reply being written on an open ticket", () => {
    assert.equal(mayPingTyping(typing), true);
  });

  it("never announce a note, an empty box, a send under way or a solved ticket", () => {
    assert.equal(mayPingTyping({ ...typing, mode: "note" }), false);
    assert.equal(mayPingTyping({ ...typing, text: "   " }), false);
    assert.equal(mayPingTyping({ ...typing, sending: true }), false);
    assert.equal(mayPingTyping({ ...typing, ticket: SOLVED }), false);
    assert.equal(mayPingTyping({ ...typing, ticket: null }), false);
  });

  it("wait between two pings", () => {
    assert.equal(mayPingTyping({ ...typing, lastPing: typing.now - TYPING_PING_MS + 1 }), false);
    assert.equal(mayPingTyping({ ...typing, lastPing: typing.now - TYPING_PING_MS }), true);
  });
});
