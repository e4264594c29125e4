/*!
 * handoff inbox — what the reply box says and allows: reply or internal note, closed for
 * replies once the ticket is solved, and when the visitor is told that someone is typing.
 * Pure (no DOM, no network), so the unit tests run it under Node.
 */
import { contactName } from "./tickets.js";

// At most one "typing" ping this often, while a reply is being written.
export const TYPING_PING_MS = 3000;

const SOLVED_NOTICE =
  "This ticket is solved — the AI assistant is handling the conversation again. You can still add internal notes.";

/** The composer for a ticket, a mode ("reply" or "note"), whether a send is under way and the text typed. */
export function composerView({ ticket, mode, sending, text }) {
  const t = ticket || {};
  const note = mode === "note";
  const replyBlocked = t.status === "solved" && !note;
  let placeholder = `Reply to ${contactName(t)}… they see it live in the chat`;
  if (note) placeholder = "Add an internal note — only your team sees this";
  else if (replyBlocked) placeholder = "This ticket is solved.";
  return {
    note,
    inputDisabled: replyBlocked,
    placeholder,
    inputLabel: note ? "Internal note" : "Reply to the visitor",
    sendLabel: note ? "Add note" : "Send reply",
    sendDisabled: sending || replyBlocked || !String(text || "").trim(),
    notice: replyBlocked ? SOLVED_NOTICE : "",
  };
}

// Whether what is typed now may tell the visitor that someone is writing to them: only a
// reply (never a note) on an open ticket, not while it is being sent, and not again too soon.
export function mayPingTyping({ ticket, mode, sending, text, lastPing, now }) {
  if (!ticket || ticket.status !== "open" || mode !== "reply" || sending) return false;
  if (!String(text || "").trim()) return false;
  return now - lastPing >= TYPING_PING_MS;
}
