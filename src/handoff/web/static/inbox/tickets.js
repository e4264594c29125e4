/*!
 * handoff inbox — the ticket list's logic: its views and their queries, which tickets a view
 * shows and in what order, the routes in the address, and what a ticket's rows and details
 * say. Pure (no DOM, no network), so the unit tests run it under Node.
 */
import { parseDate, shortId } from "../staff/format.js";

// The list's views: each is a query of GET /api/v1/tickets; `count` names its figure in the
// answer's `counts`. The server filters, orders, searches and pages.
export const VIEWS = {
  mine: { label: "Mine", params: { status: "open", assignee: "me" }, count: "mine", memberOnly: true },
  unassigned: { label: "Unassigned", params: { status: "open", assignee: "unassigned" }, count: "unassigned" },
  open: { label: "All open", params: { status: "open" }, count: "open" },
  waiting: {
    label: "Oldest waiting",
    title: "Nobody has answered yet, longest waiting first",
    params: { status: "waiting", sort: "oldest_waiting" },
    count: "waiting",
  },
  solved: { label: "Solved", params: { status: "solved" } },
};
export const PAGE_SIZE = 50;

// The views a member sees: "Mine" only for a member (the service admin has no tickets).
export function viewsFor(me) {
  const member = !!(me && me.id != null);
  return Object.entries(VIEWS).filter(([, v]) => member || !v.memberOnly);
}

// The query string of a view's page: its filters, the search and the page's cursor.
export function listQuery(tab, { query = "", cursor = null, limit = PAGE_SIZE } = {}) {
  const params = new URLSearchParams({ ...VIEWS[tab].params, limit: String(limit) });
  if (query) params.set("q", query);
  if (cursor) params.set("cursor", cursor);
  return params.toString();
}

// Whether a ticket the live stream changed still belongs in a view (the server decides on
// the next load; `waiting` here is the ticket's own flag).
export function matchesView(t, tab, me) {
  const { status, assignee } = VIEWS[tab].params;
  if (status === "waiting" ? t.status !== "open" || !t.waiting : t.status !== status) return false;
  if (assignee === "me") return !!(t.assignee && me && String(t.assignee.id) === String(me.id));
  if (assignee === "unassigned") return !t.assignee;
  return true;
}

export function oldestFirst(tab) {
  return VIEWS[tab].params.sort === "oldest_waiting";
}

export function emptyListText(tab, query) {
  if (query) return "No tickets match your search.";
  return tab === "open" ? "No open tickets. Nice work!" : "No tickets here yet.";
}

/**
 * The list as the page holds it: every ticket seen (`tickets`, id → list item) and the
 * current view's ids in order (`order`), with the view, its search and its next page.
 */
export function newList(tab = "open") {
  return { tab, query: "", cursor: null, counts: null, tickets: new Map(), order: [], selectedId: null };
}

// A page of GET /api/v1/tickets joins the list: the first page replaces the order, a next
// one extends it. The open ticket stays listed even when the view has left it out.
export function addPage(list, page, { more = false } = {}) {
  if (!more) list.order = [];
  for (const t of page.tickets) {
    const k = String(t.id);
    list.tickets.set(k, { ...(list.tickets.get(k) || {}), ...t });
    if (!list.order.includes(k)) list.order.push(k);
  }
  list.cursor = page.next_cursor;
  list.counts = page.counts;
  const open = list.selectedId;
  if (open != null && !list.order.includes(open) && list.tickets.has(open)) list.order.unshift(open);
}

// A ticket came from the API or the stream. A newcomer joins the list where the view's
// order puts it: at the top when newest first, at the end (once every page is there) when
// oldest first, and not at all while a search is on (the server decides what matches).
// An update moves a known ticket to the top (`toTop`) when newest first.
export function placeTicket(list, t, { toTop = true } = {}) {
  if (!t || t.id == null) return undefined;
  const k = String(t.id);
  const merged = { ...(list.tickets.get(k) || {}), ...t };
  list.tickets.set(k, merged);
  const i = list.order.indexOf(k);
  const oldest = oldestFirst(list.tab);
  if (i < 0) {
    if (list.query && k !== list.selectedId) return merged;
    if (!oldest) list.order.unshift(k);
    else if (!list.cursor || k === list.selectedId) list.order.push(k);
  } else if (toTop && !oldest) {
    list.order.splice(i, 1);
    list.order.unshift(k);
  }
  return merged;
}

// The rows to draw: the view's tickets, and the open one even if it no longer matches.
export function visibleTickets(list, me) {
  const rows = [];
  for (const id of list.order) {
    const t = list.tickets.get(id);
    if (t && (matchesView(t, list.tab, me) || id === list.selectedId)) rows.push(t);
  }
  return rows;
}

// A list item without the detail's heavy parts.
export function stripDetail(t) {
  const { messages: _messages, notes: _notes, evidence: _evidence, ...rest } = t;
  return rest;
}

// Routes: #ticket=ID (also #/tickets/ID) and #conversation=ID, the links the service puts
// in notifications (see Handoff.ticket_url / conversation_url).
export function parseRoute(hash) {
  const path = String(hash || "").replace(/^#\/?/, "");
  let m = /^tickets?[=/]([^&/?#]+)/.exec(path);
  if (m) return { ticket: decodeURIComponent(m[1]) };
  m = /^conversation[=/]([^&/?#]+)/.exec(path);
  if (m) return { conversation: decodeURIComponent(m[1]) };
  return {};
}

export function ticketHash(id) {
  return `#ticket=${encodeURIComponent(id)}`;
}

// A conversation's ticket: its open one, else its latest.
export function ticketOfConversation(tickets, conversationId) {
  const mine = tickets.filter((t) => String(t.conversation_id) === String(conversationId));
  const rank = (t) => (t.status === "open" ? 0 : 1);
  mine.sort((a, b) => rank(a) - rank(b) || String(b.updated_at).localeCompare(String(a.updated_at)));
  return mine.length ? mine[0].id : null;
}

export function contactName(t) {
  const c = (t && t.contact) || {};
  return c.name || c.email || c.phone || c.external_id || "Visitor";
}

export function subjectOf(t) {
  return t.subject || `Ticket #${shortId(t.id)}`;
}

const PREVIEW_LEAD = { assistant: "AI: ", human_agent: "Agent: " };

// The row's one-line preview: the last message (and who wrote it), else the summary.
export function previewText(t) {
  const m = t.last_message;
  if (!m) return t.summary || "";
  return (PREVIEW_LEAD[m.role] || "") + String(m.text || "").replace(/\s+/g, " ");
}

export function activityAt(t) {
  return (t.last_message && t.last_message.created_at) || t.updated_at || t.created_at;
}

// Messages and notes in the order they were written; a message before a note of the same
// instant, then by id.
export function transcriptItems(t) {
  const items = [
    ...(t.messages || []).map((m) => ({ kind: "m", at: m.created_at, seq: 0, data: m })),
    ...(t.notes || []).map((n) => ({ kind: "n", at: n.created_at, seq: 1, data: n })),
  ];
  const time = (it) => (parseDate(it.at) || 0) - 0;
  return items.sort((a, b) => time(a) - time(b) || a.seq - b.seq || (a.data.id || 0) - (b.data.id || 0));
}

// The assignee picker's options: nobody, each member (the current one marked), and the
// ticket's assignee even when the member list does not hold them.
export function assigneeOptions(members, me, assignee) {
  const everyone = members.length ? members : me ? [me] : [];
  const current = assignee ? String(assignee.id) : "";
  const options = [{ value: "", label: "Unassigned" }];
  for (const m of everyone) {
    let label = me && m.id === me.id ? `${m.name} (you)` : m.name || m.email;
    if (m.away) label += " · away";
    options.push({ value: String(m.id), label });
  }
  if (assignee && !options.some((o) => o.value === current)) {
    options.push({ value: current, label: assignee.name });
  }
  return { options, selected: current };
}

// The picker's value as the API's member_id: null for nobody, a number when ids are numbers.
export function memberIdOf(value, members) {
  if (value === "") return null;
  return members.some((m) => typeof m.id === "number") ? Number(value) : value;
}

// Each signal the decider weighed: the ones that fired are the reasons, the others near misses.
export function evidenceRows(t) {
  const reasons = t.reasons || [];
  return (t.evidence || []).map((ev) => ({
    reason: ev.reason || null,
    fired: reasons.includes(ev.reason),
    score: typeof ev.score === "number" ? Math.max(0, Math.min(1, ev.score)) : null,
    detail: ev.detail ? (typeof ev.detail === "string" ? ev.detail : JSON.stringify(ev.detail)) : null,
  }));
}

// What the stream's `message` event does to the ticket's list item.
export function withMessage(t, message) {
  return {
    ...t,
    last_message: { role: message.role, text: message.text, created_at: message.created_at },
    waiting: message.role === "user" ? true : t.waiting,
  };
}
