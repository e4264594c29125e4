/*!
 * handoff inbox — the live stream (GET /api/v1/inbox/events) as the page reads it: each
 * event's data checked, what a ticket update means for the member, and how long to wait
 * before reconnecting. Pure (no DOM, no network), so the unit tests run it under Node.
 */
import { matchesView } from "./tickets.js";

/**
 * An event's data, or null when it cannot be used: `ticket` gives { ticket }, `message`
 * { ticketId, message } and `note` { ticketId, note }.
 */
export function readEvent(type, raw) {
  let data;
  try {
    data = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!data || typeof data !== "object") return null;
  if (type === "ticket") return data.id == null ? null : { ticket: data };
  if (data.ticket_id == null) return null;
  const ticketId = String(data.ticket_id);
  if (type === "message") return data.message ? { ticketId, message: data.message } : null;
  if (type === "note") return data.note ? { ticketId, note: data.note } : null;
  return null;
}

/**
 * What a live ticket update tells a member not looking at it: `unseen` when the ticket is in
 * their view, `announce` too when the view did not hold it before (a new ticket for them).
 */
export function ticketNews({ ticket, tab, me, looking, known }) {
  if (looking || !matchesView(ticket, tab, me)) return { unseen: false, announce: false };
  return { unseen: true, announce: !known };
}

// The wait before reconnecting a refused or closed stream: doubling from 1 s up to 30 s,
// plus up to half a second so that many pages do not come back at once.
export function reconnectDelay(attempt, random = Math.random()) {
  return Math.min(30000, 1000 * 2 ** attempt) + random * 500;
}
