/*!
 * handoff staff pages — how an API error reads: the answer's `detail` and `code` in plain
 * words. Pure (no DOM, no network), so the unit tests run it under Node.
 */

export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

// How a page words an error whose `code` says more than its message.
const LEADS = {
  invalid_auth: "Not connected, the credentials were refused: ",
  cannot_connect: "Not connected: ",
};

export function humanize(message, code) {
  const text = String(message || "").replace(/^Value error, /, "");
  const lead = LEADS[code];
  if (!lead) return text;
  // These messages also start with their code, for clients older than `code`.
  const prefix = `${code}: `;
  return lead + (text.startsWith(prefix) ? text.slice(prefix.length) : text);
}

// The field a validation error names: ["body", "credentials", "url"] → "credentials.url".
// Only the leading "body" is where the field is; a field may be called "body" too (a canned
// reply's).
export function errorPath(item) {
  if (!item || !Array.isArray(item.loc)) return "";
  const loc = item.loc[0] === "body" ? item.loc.slice(1) : item.loc;
  return loc.map(String).join(".");
}

export function errorMessage(item, code) {
  return humanize(item && item.msg, code);
}

export function detailOf(data) {
  if (!data || typeof data !== "object") return "";
  const d = data.detail;
  if (typeof d === "string") return humanize(d, data.code);
  if (Array.isArray(d)) {
    return d
      .map((e) => {
        const path = errorPath(e);
        return path ? `${path}: ${errorMessage(e, data.code)}` : errorMessage(e, data.code);
      })
      .filter(Boolean)
      .join(" · ");
  }
  if (d && typeof d === "object" && typeof d.message === "string") return d.message;
  return "";
}

// What a failed request says when its answer names no detail.
export function fallbackMessage(status) {
  return status >= 500 ? "Server error. Please try again." : `Request failed (${status}).`;
}
