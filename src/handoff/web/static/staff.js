/*!
 * handoff staff pages — what the inbox and the settings page share: the DOM builder, the
 * signed-in token, JSON requests with readable errors, and toasts. Plain ES2020.
 *
 * Security: text is always inserted with textContent (see `h`), never as markup.
 */
(() => {
  "use strict";

  const TOKEN_KEY = "handoff:inbox:token";
  let memoryToken = null; // when the browser blocks storage

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  class ApiError extends Error {
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
  function humanize(message, code) {
    const text = String(message || "").replace(/^Value error, /, "");
    const lead = LEADS[code];
    if (!lead) return text;
    // These messages also start with their code, for clients older than `code`.
    const prefix = `${code}: `;
    return lead + (text.startsWith(prefix) ? text.slice(prefix.length) : text);
  }
  function errorPath(item) {
    if (!item || !Array.isArray(item.loc)) return "";
    return item.loc
      .filter((x) => x !== "body")
      .map(String)
      .join(".");
  }
  function errorMessage(item, code) {
    return humanize(item && item.msg, code);
  }
  function detailOf(data) {
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

  function storedToken() {
    try {
      return localStorage.getItem(TOKEN_KEY) || memoryToken;
    } catch {
      return memoryToken;
    }
  }

  function storeToken(t) {
    memoryToken = t;
    try {
      if (t) localStorage.setItem(TOKEN_KEY, t);
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      /* storage blocked: keep it in memory */
    }
  }

  /** Send a JSON request; return the parsed answer or throw an ApiError with a readable message. */
  async function request(path, { method = "GET", body, token = null } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch {
      throw new ApiError(0, "Can't reach the server. Check your connection.");
    }
    const raw = await res.text();
    let data = null;
    if (raw) {
      try {
        data = JSON.parse(raw);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const fallback = res.status >= 500 ? "Server error. Please try again." : `Request failed (${res.status}).`;
      throw new ApiError(res.status, detailOf(data) || fallback, data);
    }
    return data;
  }

  function toast(message, kind = "error") {
    const t = h("div", { class: `toast toast-${kind}`, "data-testid": "toast", role: kind === "error" ? "alert" : "status" }, message);
    const close = h("button", { class: "toast-close", type: "button", "aria-label": "Dismiss", text: "×" });
    close.addEventListener("click", () => t.remove());
    t.append(close);
    document.getElementById("toasts").append(t);
    setTimeout(() => t.classList.add("leaving"), 5200);
    setTimeout(() => t.remove(), 5600);
  }
  window.HandoffStaff = Object.freeze({
    h,
    ApiError,
    errorPath,
    errorMessage,
    detailOf,
    storedToken,
    storeToken,
    request,
    toast,
  });
})();
