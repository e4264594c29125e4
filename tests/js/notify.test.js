// When the inbox alerts a member, and with what words.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { messageAlert, notificationState, ticketAlert } from "../../src/handoff/web/static/inbox/notify.js";

const ME = { id: "m1" };
const NOW = Date.parse("2026-12-07T12:00:00Z");
const NEW = { id: "t1", status: "open", subject: "Card charged twice", contact: { name: "Ana" }, assignee: null, created_at: "2026-12-07T11:59:58Z" };
const MINE = { ...NEW, assignee: { id: "m1" } };
const THEIRS = { ...NEW, assignee: { id: "m2" } };

describe("alerts", () => {
  it("announces a new open ticket that is unassigned or the member's", () => {
    assert.deepEqual(ticketAlert({ ticket: NEW, me: ME, known: false, now: NOW }), {
      title: "New ticket from Ana",
      body: "Card charged twice",
      tag: "ticket-t1",
    });
    assert.notEqual(ticketAlert({ ticket: MINE, me: ME, known: false, now: NOW }), null);
  });

  it("stays quiet on known, solved or someone else's tickets", () => {
    assert.equal(ticketAlert({ ticket: NEW, me: ME, known: true, now: NOW }), null);
    assert.equal(ticketAlert({ ticket: { ...NEW, status: "solved" }, me: ME, known: false, now: NOW }), null);
    assert.equal(ticketAlert({ ticket: THEIRS, me: ME, known: false, now: NOW }), null);
    const old = { ...NEW, created_at: "2026-12-07T11:50:00Z" };
    assert.equal(ticketAlert({ ticket: old, me: ME, known: false, now: NOW }), null, "an older ticket's update");
  });

  it("announces a visitor's message on the member's own ticket when not looking", () => {
    const message = { role: "user", text: "Hello?\n\nAnyone   there?" };
    assert.deepEqual(messageAlert({ ticket: MINE, message, me: ME, looking: false }), {
      title: "Ana wrote",
      body: "Hello? Anyone there?",
      tag: "ticket-t1",
    });
    assert.equal(messageAlert({ ticket: MINE, message, me: ME, looking: true }), null);
    assert.equal(messageAlert({ ticket: THEIRS, message, me: ME, looking: false }), null);
    assert.equal(messageAlert({ ticket: NEW, message, me: ME, looking: false }), null);
    assert.equal(messageAlert({ ticket: MINE, message: { role: "human_agent", text: "Hi" }, me: ME, looking: false }), null);
  });

  it("clips a long message", () => {
    const body = messageAlert({ ticket: MINE, message: { role: "user", text: "a".repeat(500) }, me: ME, looking: false }).body;
    assert.equal(body.length, 140);
    assert.ok(body.endsWith("…"));
  });

  it("says whether notifications are on, off, blocked or unsupported", () => {
    assert.equal(notificationState("granted", true), "on");
    assert.equal(notificationState("granted", false), "off");
    assert.equal(notificationState("default", true), "off");
    assert.equal(notificationState("denied", true), "blocked");
    assert.equal(notificationState(undefined, true), "unsupported");
  });
});
