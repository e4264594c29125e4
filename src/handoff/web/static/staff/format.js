/*!
 * handoff staff pages — formatting shared by the inbox and the settings page: initials and
 * colours for avatars, short ids, times, links in text and breakable emails. Pure (no DOM).
 */

export function initials(name) {
  const parts = String(name || "")
    .trim()
    .split(/[\s@._-]+/)
    .filter(Boolean);
  if (!parts.length) return "?";
  const a = parts[0][0] || "";
  const b = parts.length > 1 ? parts[1][0] : "";
  return (a + b).toUpperCase();
}

// A stable hue per name, for avatars' pastel colours.
export function hue(name) {
  let x = 0;
  for (const ch of String(name || "")) x = (x * 31 + ch.charCodeAt(0)) % 360;
  return x;
}

// Long opaque ids (uuid hex) read better shortened; the full id stays in the title.
export function shortId(id) {
  const s = String(id ?? "");
  return s.length > 10 ? s.slice(0, 8) : s;
}

// Only http(s) URLs become links or pictures: never javascript: or data:.
export function safeHttpUrl(raw) {
  if (typeof raw !== "string" || !raw) return null;
  try {
    const u = new URL(raw);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}

export function parseDate(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

export const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

// "just now", "5m ago", "3h ago", "2d ago", then the date.
export function relTime(iso, now = Date.now()) {
  const d = parseDate(iso);
  if (!d) return "";
  const s = Math.round((now - d.getTime()) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  if (s < 7 * 86400) return `${Math.round(s / 86400)}d ago`;
  return dayFormat.format(d);
}

const URL_RE = /\bhttps?:\/\/[^\s<>"')\]]+[^\s<>"')\].,;:!?]/gi;

// Text cut into plain pieces and links: [{ text }, { href }, …]. A trailing dot or comma
// stays out of a link.
export function linkPieces(text) {
  const s = String(text ?? "");
  const pieces = [];
  let last = 0;
  for (const m of s.matchAll(URL_RE)) {
    if (m.index > last) pieces.push({ text: s.slice(last, m.index) });
    pieces.push({ href: m[0] });
    last = m.index + m[0].length;
  }
  if (last < s.length) pieces.push({ text: s.slice(last) });
  return pieces;
}

// A long email wraps after its "@" and before its dots, never inside a word: these are its
// pieces, each to be followed by a line-break opportunity.
export function emailPieces(email) {
  return String(email).split(/(?<=@)|(?=\.)/);
}
