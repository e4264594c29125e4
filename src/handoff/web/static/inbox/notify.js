/*!
 * handoff inbox — when the member is alerted (a desktop notification, a sound) and with what
 * words: a new ticket they may take, or a visitor writing on a ticket assigned to them, while
 * they are not looking at it. Pure (no DOM, no network), so the unit tests run it under Node.
 */
import { contactName, subjectOf } from "./tickets.js";

const LONGEST_BODY = 140;
// A ticket event is about a new ticket when the ticket is this recent (later events about an
// older ticket the page had not loaded are assignments, answers or solves).
const NEW_FOR_MS = 5 * 60 * 1000;

/**
 * The alert for a ticket event: a new open ticket, unassigned or theirs, that the page had not
 * seen before (`known`); otherwise null.
 */
export function ticketAlert({ ticket, me, known, now }) {
  if (known || !ticket || ticket.status !== "open") return null;
  if (!(now - Date.parse(ticket.created_at) < NEW_FOR_MS)) return null;
  const assignee = ticket.assignee && ticket.assignee.id;
  if (assignee != null && !isMe(assignee, me)) return null;
  return {
    title: `New ticket from ${contactName(ticket)}`,
    body: clip(subjectOf(ticket)),
    tag: `ticket-${ticket.id}`,
  };
}

/** The alert for a message event: the visitor wrote on a ticket assigned to the member. */
export function messageAlert({ ticket, message, me, looking }) {
  if (looking || !ticket || !message || message.role !== "user") return null;
  if (!ticket.assignee || !isMe(ticket.assignee.id, me)) return null;
  return { title: `${contactName(ticket)} wrote`, body: clip(message.text), tag: `ticket-${ticket.id}` };
}

/**
 * What the notifications switch shows, from the browser's permission and the member's choice:
 * `on` only when both allow it; `blocked` when the browser refuses (only its site settings
 * can change that); `unsupported` without the Notification API.
 */
export function notificationState(permission, wanted) {
  if (permission === undefined) return "unsupported";
  if (permission === "denied") return "blocked";
  return wanted && permission === "granted" ? "on" : "off";
}

function isMe(memberId, me) {
  return !!me && me.id != null && String(memberId) === String(me.id);
}

function clip(text) {
  const flat = String(text || "").replace(/\s+/g, " ").trim();
  return flat.length > LONGEST_BODY ? `${flat.slice(0, LONGEST_BODY - 1)}…` : flat;
}
