// The inbox's list logic: views and their queries, how pages and live updates change the
// list, routes, and what rows and details say.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  PAGE_SIZE,
  addPage,
  assigneeOptions,
  contactName,
  emptyListText,
  evidenceRows,
  listQuery,
  matchesView,
  memberIdOf,
  newList,
  parseRoute,
  placeTicket,
  previewText,
  stripDetail,
  subjectOf,
  ticketHash,
  ticketOfConversation,
  transcriptItems,
  viewsFor,
  visibleTickets,
  withMessage,
} from "../../src/handoff/web/static/inbox/tickets.js";

const ME = { id: 7, name: "Sam" };
const open = (id, more = {}) => ({ id, status: "open", waiting: false, assignee: null, ...more });
const page = (tickets, next_cursor = null) => ({ tickets, next_cursor, counts: { open: tickets.length } });
const ids = (list) => [...list.order];

describe("views and queries", () => {
  it("asks the server for the view's filters, the search and the next page", () => {
    const q = (...args) => Object.fromEntries(new URLSearchParams(listQuery(...args)));
    assert.deepEqual(q("mine"), { status: "open", assignee: "me", limit: String(PAGE_SIZE) });
    assert.deepEqual(q("waiting", { query: "zanzibar", cursor: "abc" }), {
      status: "waiting",
      sort: "oldest_waiting",
      limit: String(PAGE_SIZE),
      q: "zanzibar",
      cursor: "abc",
    });
  });

  it("shows Mine to members only", () => {
    assert.ok(viewsFor(ME).some(([key]) => key === "mine"));
    assert.ok(!viewsFor({ id: null, role: "admin" }).some(([key]) => key === "mine"));
    assert.ok(!viewsFor(null).some(([key]) => key === "mine"));
  });

  it("keeps a changed ticket in the views it still matches", () => {
    const mine = open(1, { assignee: { id: "7" } });
    assert.ok(matchesView(mine, "mine", ME));
    assert.ok(!matchesView(mine, "unassigned", ME));
    assert.ok(matchesView(open(2), "unassigned", ME));
    assert.ok(!matchesView(open(2), "waiting", ME));
    assert.ok(matchesView(open(2, { waiting: true }), "waiting", ME));
    assert.ok(!matchesView({ ...open(2, { waiting: true }), status: "solved" }, "waiting", ME));
    assert.ok(matchesView({ ...open(3), status: "solved" }, "solved", ME));
    assert.ok(!matchesView(mine, "mine", null));
  });

  it("says why the list is empty", () => {
    assert.equal(emptyListText("open", "refund"), "No tickets match your search.");
    assert.equal(emptyListText("open", ""), "No open tickets. Nice work!");
    assert.equal(emptyListText("solved", ""), "No tickets here yet.");
  });
});

describe("the list's state", () => {
  it("replaces the order with a first page and extends it with the next", () => {
    const list = newList();
    addPage(list, page([open(1), open(2)], "c1"));
    assert.deepEqual(ids(list), ["1", "2"]);
    assert.equal(list.cursor, "c1");
    addPage(list, page([open(2), open(3)]), { more: true });
    assert.deepEqual(ids(list), ["1", "2", "3"]);
    assert.equal(list.cursor, null);
    addPage(list, page([open(3)]));
    assert.deepEqual(ids(list), ["3"]);
    assert.equal(list.tickets.size, 3, "tickets seen stay known");
  });

  it("keeps the open ticket listed when a new page leaves it out", () => {
    const list = newList();
    addPage(list, page([open(1), open(2)]));
    list.selectedId = "2";
    addPage(list, page([open(1)]));
    assert.deepEqual(ids(list), ["2", "1"]);
  });

  it("merges an update into what is known", () => {
    const list = newList();
    addPage(list, page([open(1, { subject: "Refund" })]));
    const merged = placeTicket(list, { id: 1, waiting: true });
    assert.equal(merged.subject, "Refund");
    assert.equal(list.tickets.get("1").waiting, true);
  });

  it("puts a newcomer and an update on top when newest first", () => {
    const list = newList();
    addPage(list, page([open(1), open(2)]));
    placeTicket(list, open(3));
    assert.deepEqual(ids(list), ["3", "1", "2"]);
    placeTicket(list, open(2));
    assert.deepEqual(ids(list), ["2", "3", "1"]);
    placeTicket(list, open(1), { toTop: false });
    assert.deepEqual(ids(list), ["2", "3", "1"]);
  });

  it("adds a newcomer at the end when oldest first, once every page is there", () => {
    const list = newList("waiting");
    addPage(list, page([open(1), open(2)], "more"));
    placeTicket(list, open(3, { waiting: true }));
    assert.deepEqual(ids(list), ["1", "2"], "its place is on a page not loaded yet");
    list.cursor = null;
    placeTicket(list, open(3, { waiting: true }));
    placeTicket(list, open(3, { waiting: true }));
    assert.deepEqual(ids(list), ["1", "2", "3"], "an update does not move it");
  });

  it("adds no newcomer while a search is on, except the open ticket", () => {
    const list = newList();
    list.query = "refund";
    addPage(list, page([open(1)]));
    placeTicket(list, open(2));
    assert.deepEqual(ids(list), ["1"]);
    list.selectedId = "3";
    placeTicket(list, open(3));
    assert.deepEqual(ids(list), ["3", "1"]);
  });

  it("ignores what is not a ticket", () => {
    const list = newList();
    assert.equal(placeTicket(list, null), undefined);
    assert.equal(placeTicket(list, { subject: "no id" }), undefined);
    assert.equal(list.tickets.size, 0);
  });

  it("draws the view's tickets and the open one, in order", () => {
    const list = newList("unassigned");
    addPage(list, page([open(1), open(2, { assignee: { id: 7, name: "Sam" } }), open(3)]));
    assert.deepEqual(visibleTickets(list, ME).map((t) => t.id), [1, 3]);
    list.selectedId = "2";
    assert.deepEqual(visibleTickets(list, ME).map((t) => t.id), [1, 2, 3]);
  });

  it("strips a ticket's detail down to its list item", () => {
    const item = stripDetail({ id: 1, subject: "s", messages: [1], notes: [2], evidence: [3] });
    assert.deepEqual(item, { id: 1, subject: "s" });
  });

  it("records a stream message as the ticket's last, waiting when the visitor wrote", () => {
    const at = "2026-03-10T12:00:00Z";
    const t = withMessage(open(1), { role: "user", text: "Hello?", created_at: at, id: 9 });
    assert.deepEqual(t.last_message, { role: "user", text: "Hello?", created_at: at });
    assert.equal(t.waiting, true);
    assert.equal(withMessage(t, { role: "assistant", text: "Hi" }).waiting, true);
    assert.equal(withMessage(open(1), { role: "assistant", text: "Hi" }).waiting, false);
  });
});

describe("routes", () => {
  it("reads the ticket and conversation links the service sends", () => {
    assert.deepEqual(parseRoute("#ticket=abc"), { ticket: "abc" });
    assert.deepEqual(parseRoute("#/tickets/a%20b"), { ticket: "a b" });
    assert.deepEqual(parseRoute("#conversation=c-1"), { conversation: "c-1" });
    assert.deepEqual(parseRoute(""), {});
    assert.deepEqual(parseRoute("#settings"), {});
    assert.equal(ticketHash("a b"), "#ticket=a%20b");
    assert.deepEqual(parseRoute(ticketHash("x/y")), { ticket: "x/y" });
  });

  it("opens a conversation's open ticket, else its latest", () => {
    const tickets = [
      { id: 1, conversation_id: "c", status: "solved", updated_at: "2026-03-02" },
      { id: 2, conversation_id: "c", status: "solved", updated_at: "2026-03-03" },
      { id: 3, conversation_id: "d", status: "open", updated_at: "2026-03-04" },
    ];
    assert.equal(ticketOfConversation(tickets, "c"), 2);
    assert.equal(ticketOfConversation([...tickets, { id: 4, conversation_id: "c", status: "open", updated_at: "2026-03-01" }], "c"), 4);
    assert.equal(ticketOfConversation(tickets, "e"), null);
  });
});

describe("what rows and details say", () => {
  it("names the contact by what is known of them", () => {
    assert.equal(contactName({ contact: { name: "Jane", email: "j@x.io" } }), "Jane");
    assert.equal(contactName({ contact: { email: "j@x.io" } }), "j@x.io");
    assert.equal(contactName({ contact: { phone: "+4911" } }), "+4911");
    assert.equal(contactName({}), "Visitor");
    assert.equal(contactName(null), "Visitor");
  });

  it("falls back on a short id for a ticket without a subject", () => {
    assert.equal(subjectOf({ id: "0f8c2d9a4b7e4c1d", subject: "" }), "Ticket #0f8c2d9a");
    assert.equal(subjectOf({ id: 1, subject: "Refund" }), "Refund");
  });

  it("previews the last message on one line, saying who wrote it", () => {
    assert.equal(previewText({ last_message: { role: "assistant", text: "Hi\n\nthere" } }), "AI: Hi there");
    assert.equal(previewText({ last_message: { role: "human_agent", text: "On it" } }), "Agent: On it");
    assert.equal(previewText({ last_message: { role: "user", text: "Help" } }), "Help");
    assert.equal(previewText({ summary: "Wants a refund" }), "Wants a refund");
  });

  it("orders the transcript by time, a message before a note of the same instant", () => {
    const t = {
      messages: [
        { id: 2, created_at: "2026-03-10T12:00:02Z" },
        { id: 1, created_at: "2026-03-10T12:00:00Z" },
      ],
      notes: [{ id: 1, created_at: "2026-03-10T12:00:00Z" }],
    };
    assert.deepEqual(
      transcriptItems(t).map((it) => `${it.kind}${it.data.id}`),
      ["m1", "n1", "m2"],
    );
    assert.deepEqual(transcriptItems({}), []);
  });

  it("offers nobody, each member, and an assignee the member list lacks", () => {
    const members = [ME, { id: 8, name: "Kim", away: true }];
    const { options, selected } = assigneeOptions(members, ME, { id: 8, name: "Kim" });
    assert.deepEqual(options.map((o) => o.label), ["Unassigned", "Sam (you)", "Kim · away"]);
    assert.equal(selected, "8");
    const gone = assigneeOptions(members, ME, { id: 9, name: "Former" });
    assert.deepEqual(gone.options.at(-1), { value: "9", label: "Former" });
    assert.deepEqual(assigneeOptions([], ME, null).options.map((o) => o.value), ["", "7"]);
  });

  it("sends the picked member as the API's member_id", () => {
    assert.equal(memberIdOf("", [ME]), null);
    assert.equal(memberIdOf("8", [ME]), 8);
    assert.equal(memberIdOf("u-8", [{ id: "u-7" }]), "u-8");
  });

  it("tells fired signals from near misses, scores kept within 0..1", () => {
    const rows = evidenceRows({
      reasons: ["explicit_request"],
      evidence: [
        { reason: "explicit_request", score: 1.4, detail: "talk to a human" },
        { reason: "frustration", score: 0.31, detail: { words: 2 } },
        { reason: null, score: "n/a" },
      ],
    });
    assert.deepEqual(rows, [
      { reason: "explicit_request", fired: true, score: 1, detail: "talk to a human" },
      { reason: "frustration", fired: false, score: 0.31, detail: '{"words":2}' },
      { reason: null, fired: false, score: null, detail: null },
    ]);
  });
});
