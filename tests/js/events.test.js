// The inbox's live stream: which events it can use, what a ticket update tells the member,
// and how long it waits before reconnecting.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { readEvent, reconnectDelay, ticketNews } from "../../src/handoff/web/static/inbox/events.js";

const ME = { id: 7 };

describe("events", () => {
  it("reads tickets, messages and notes", () => {
    assert.deepEqual(readEvent("ticket", '{"id": 3, "status": "open"}'), { ticket: { id: 3, status: "open" } });
    assert.deepEqual(readEvent("message", '{"ticket_id": 3, "message": {"id": 9, "text": "Hi"}}'), {
      ticketId: "3",
      message: { id: 9, text: "Hi" },
    });
    assert.deepEqual(readEvent("note", '{"ticket_id": "t", "note": {"id": 1}}'), { ticketId: "t", note: { id: 1 } });
  });

  it("drops what it cannot use", () => {
    assert.equal(readEvent("ticket", "not json"), null);
    assert.equal(readEvent("ticket", "null"), null);
    assert.equal(readEvent("ticket", '"text"'), null);
    assert.equal(readEvent("ticket", '{"status": "open"}'), null);
    assert.equal(readEvent("message", '{"ticket_id": 3}'), null);
    assert.equal(readEvent("message", '{"message": {"id": 1}}'), null);
    assert.equal(readEvent("note", '{"ticket_id": 3, "message": {"id": 1}}'), null);
    assert.equal(readEvent("other", '{"ticket_id": 3, "note": {"id": 1}}'), null);
  });

  it("marks an update unseen in the member's view, and announces a newcomer", () => {
    const waiting = { id: 1, status: "open", waiting: true, assignee: null };
    const seen = { ticket: waiting, tab: "open", me: ME, looking: false, known: true };
    assert.deepEqual(ticketNews(seen), { unseen: true, announce: false });
    assert.deepEqual(ticketNews({ ...seen, known: false }), { unseen: true, announce: true });
  });

  it("says nothing of a ticket being looked at, or outside the view", () => {
    const waiting = { id: 1, status: "open", waiting: true, assignee: null };
    const news = { ticket: waiting, tab: "open", me: ME, looking: true, known: false };
    assert.deepEqual(ticketNews(news), { unseen: false, announce: false });
    assert.deepEqual(ticketNews({ ...news, looking: false, tab: "mine" }), { unseen: false, announce: false });
    assert.deepEqual(ticketNews({ ...news, looking: false, tab: "solved" }), { unseen: false, announce: false });
  });

  it("waits twice as long after each refusal, at most 30 s and a jitter", () => {
    assert.equal(reconnectDelay(0, 0), 1000);
    assert.equal(reconnectDelay(3, 0), 8000);
    assert.equal(reconnectDelay(10, 0), 30000);
    assert.equal(reconnectDelay(0, 1), 1500);
  });
});
