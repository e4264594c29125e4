/*!
 * handoff chat widget — plain ES2020, no dependencies.
 *
 * Embed:
 *   <script src="https://HOST/static/widget.js" data-agent="AGENT_ID" defer></script>
 * Options (data-* attributes on the script tag):
 *   data-agent    required, the agent id
 *   data-mode     "bubble" (default: launcher bottom-right) | "page" (fills #handoff-chat or body)
 *   data-channel  the channel the conversation opens on; by default the one the server gives
 *                 the mode (`modes` in GET /api/v1/agents/{id}/public), remembered per mode
 *   data-api      API base URL; defaults to the origin this script was loaded from
 *   data-color    accent colour (any CSS colour); overrides the agent's `primary_color`
 *   data-text-color  colour of text on the accent; overrides the agent's `text_color`
 *   data-title    header title before the agent's settings are known
 *
 * Theming: the agent's widget settings (GET /api/v1/agents/{id}/widget: colours and texts)
 * become CSS custom properties inside the shadow DOM and text nodes.
 *
 * Delivery: messages carry a `client_id`; a message written while offline waits in a queue
 * (kept in localStorage) and is sent once the network is back, and the API stores a resend
 * once. The live stream resumes after the last event id it saw, and messages are shown once
 * per id, so a reconnect neither loses nor repeats anything.
 *
 * Security: every piece of text that comes from the API (agent name, settings, greeting,
 * messages, author names) is inserted with textContent or as attribute values, never as
 * markup; avatar images load only from http(s) URLs.
 */
(() => {
  "use strict";

  const script =
    document.currentScript ||
    document.querySelector('script[src*="widget.js"][data-agent]');
  if (!script) return;

  const ds = script.dataset;
  const AGENT = (ds.agent || "").trim();
  if (!AGENT) {
    console.warn("[handoff] widget.js: missing data-agent attribute");
    return;
  }
  const MODE = ds.mode === "page" ? "page" : "bubble";
  const API = (ds.api || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  // The channel: the tag's data-channel, else the one the server gives this mode, remembered
  // under CHANNEL_KEY so that a returning visitor's conversation (kept under its channel) is
  // found before the server answers. Unknown on a first visit until the agent's details come.
  const CHANNEL_KEY = `handoff:${AGENT}:${MODE}:channel`;
  let CHANNEL = (ds.channel || "").trim() || null;
  // Where this browser keeps the conversation, the open state and the unsent messages.
  const keyOf = (suffix) => `handoff:${AGENT}:${CHANNEL}${suffix}`;
  // The widget's own texts: English below, shown until the agent's public details bring every
  // language (`labels`, from the service's catalogues). The conversation's language chooses,
  // else the page's data-lang (also sent as the conversation's `lang`), else the workspace's.
  const LANGUAGES = ["en", "es", "fr", "de", "pt", "it"];
  const PAGE_LANG = LANGUAGES.find((l) => l === (ds.lang || "").trim().toLowerCase()) || null;
  const ENGLISH = {
    title: "Chat with us",
    open_chat: "Open chat",
    minimise_chat: "Minimise chat",
    minimise: "Minimise",
    ai_assistant: "AI assistant",
    ai: "AI",
    you: "You",
    support_team: "Support team",
    back_to_ai: "Back to the AI",
    conversation: "Conversation",
    loading: "Loading…",
    greeting: "Ask us anything — we usually answer right away.",
    placeholder: "Write a message…",
    send: "Send message",
    send_hint: "Send (Enter)",
    composer: "Send a message",
    powered_by: "Powered by ",
    someone: "Someone from our team",
    joined: "{name} joined the conversation",
    typing: "{name} is typing…",
    assistant_typing: "The assistant is typing…",
    team_unreachable: "We couldn't reach our team right now. Leave a message and we'll get back to you.",
    with_team: "You're chatting with our support team.",
    team_will_reply: "A person from our team will reply here. You can keep this page open.",
    sending: "Sending…",
    unread_one: "{label}, 1 new message",
    unread_many: "{label}, {count} new messages",
    arrived_one: "1 new message in the chat",
    arrived_many: "{count} new messages in the chat",
    arrived_from: "{news}, the latest from {name}.",
    waiting_network: "Waiting for the network…",
    retrying: "Retrying…",
    not_sent: "Your message could not be sent.",
    failed: "That didn't work. Please try again.",
    not_available: "This chat is not available.",
    offline: "Can't reach the server. Check your connection and try again.",
    too_fast: "You're sending messages a little fast. Please wait a moment.",
    server_error: "Something went wrong on our side. Please try again.",
  };
  const i18n = { labels: null, language: PAGE_LANG, conversation: null };

  // Return a widget text in the visitor's language, its {fields} filled in.
  function L(key, fields) {
    const lang = i18n.conversation || i18n.language || "en";
    const own = (i18n.labels && i18n.labels[lang]) || {};
    let text = own[key] || ENGLISH[key];
    for (const [k, v] of Object.entries(fields || {})) text = text.split(`{${k}}`).join(v);
    return text;
  }
  // The admin's own texts (widget settings, the greeting) in the visitor's language, else the
  // default ones the admin gave; undefined where the admin gave none.
  function inVisitorsLanguage(byLanguage) {
    return (byLanguage || {})[i18n.conversation || i18n.language || "en"];
  }
  function setting(key) {
    const t = state.theme || {};
    return (inVisitorsLanguage(t.translations) || {})[key] || t[key] || undefined;
  }
  function greeting() {
    const a = state.agent || {};
    return inVisitorsLanguage(a.greetings) || a.greeting || undefined;
  }
  const HUMAN_TYPING_MS = 6000; // the inbox pings every ~3 s while a person types
  const COLOUR_RE = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

  // One widget per agent and mode (or channel) on a page, even if the snippet is pasted twice.
  const WIDGET_ID = `${AGENT}:${CHANNEL || MODE}`;
  window.__handoffWidgets = window.__handoffWidgets || {};
  if (window.__handoffWidgets[WIDGET_ID]) return;

  // ---------------------------------------------------------------- storage (may be blocked)
  const memory = {};
  const storage = {
    get(area, key) {
      try {
        return window[area].getItem(key);
      } catch {
        return memory[area + key] ?? null;
      }
    },
    set(area, key, value) {
      try {
        if (value === null) window[area].removeItem(key);
        else window[area].setItem(key, value);
      } catch {
        if (value === null) delete memory[area + key];
        else memory[area + key] = value;
      }
    },
  };
  if (!CHANNEL) CHANNEL = storage.get("localStorage", CHANNEL_KEY);

  // The session: the conversation, its token, the last live event seen (the stream resumes
  // after it) and the newest message the visitor has seen (newer ones count as unread).
  function loadSession() {
    try {
      const s = JSON.parse(storage.get("localStorage", keyOf("")) || "null");
      if (s && s.id != null && typeof s.token === "string") {
        return {
          id: s.id,
          token: s.token,
          lastEventId: Number.isSafeInteger(s.lastEventId) ? s.lastEventId : 0,
          seenId: Number.isSafeInteger(s.seenId) ? s.seenId : null,
        };
      }
    } catch {
      /* corrupt entry: start over */
    }
    return null;
  }

  function saveSession(s) {
    const data = s ? { id: s.id, token: s.token, lastEventId: s.lastEventId || 0, seenId: s.seenId ?? null } : null;
    if (CHANNEL) storage.set("localStorage", keyOf(""), data ? JSON.stringify(data) : null);
  }

  // Messages written but not yet accepted by the server, oldest first: [{client_id, text}].
  function loadOutbox() {
    try {
      const q = JSON.parse(storage.get("localStorage", keyOf(":outbox")) || "[]");
      if (Array.isArray(q)) return q.filter((x) => x && typeof x.client_id === "string" && typeof x.text === "string");
    } catch {
      /* corrupt entry: nothing queued */
    }
    return [];
  }

  function saveOutbox(queue) {
    // Before the channel is known the queue waits in memory; knowing it saves the queue.
    if (CHANNEL) storage.set("localStorage", keyOf(":outbox"), queue.length ? JSON.stringify(queue) : null);
  }

  // A unique id per message; the API stores a message sent twice with one id once.
  function newClientId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "w-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function safeImageUrl(raw) {
    if (typeof raw !== "string" || !raw) return null;
    try {
      const u = new URL(raw);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch {
      return null;
    }
  }

  // ---------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, message, data) {
      super(message);
      this.status = status;
      this.data = data;
    }
  }

  function detailOf(data) {
    if (!data || typeof data !== "object") return "";
    const d = data.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) {
      return d
        .map((e) => (e && typeof e.msg === "string" ? e.msg.replace(/^Value error, /, "") : ""))
        .filter(Boolean)
        .join(" · ");
    }
    if (d && typeof d === "object" && typeof d.message === "string") return d.message;
    return "";
  }

  async function api(path, { method = "GET", body, token } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        mode: "cors",
      });
    } catch {
      throw new ApiError(0, L("offline"));
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
      let msg = detailOf(data);
      if (!msg) {
        if (res.status === 429) msg = L("too_fast");
        else if (res.status >= 500) msg = L("server_error");
        else msg = `Request failed (${res.status}).`;
      }
      throw new ApiError(res.status, msg, data);
    }
    return data;
  }

  // ---------------------------------------------------------------- DOM helpers
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
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // Static, trusted icon markup only (never data).
  const ICONS = {
    chat:
      '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 3C6.5 3 2 6.8 2 11.5c0 2.4 1.2 4.6 3.1 6.1-.1 1.3-.6 2.6-1.6 3.6 2 0 3.8-.7 5.1-1.7 1.1.3 2.2.5 3.4.5 5.5 0 10-3.8 10-8.5S17.5 3 12 3z"/></svg>',
    close:
      '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" d="M6 6l12 12M18 6L6 18"/></svg>',
    chevron:
      '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round" d="M6 9l6 6 6-6"/></svg>',
    send:
      '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"><path fill="currentColor" d="M3.4 20.4l17.5-7.5c.8-.4.8-1.5 0-1.8L3.4 3.6c-.7-.3-1.4.3-1.3 1l1 5.6c.1.5.5.8 1 .9l8.4 1-8.4 1c-.5.1-.9.4-1 .9l-1 5.6c-.1.7.6 1.3 1.3.8z"/></svg>',
    bot:
      '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 2a1.5 1.5 0 0 1 .75 2.8V6H17a3 3 0 0 1 3 3v8a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3V9a3 3 0 0 1 3-3h4.25V4.8A1.5 1.5 0 0 1 12 2zM9 11a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm6 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zM2 11h1v5H2a1 1 0 0 1-1-1v-3a1 1 0 0 1 1-1zm20 0a1 1 0 0 1 1 1v3a1 1 0 0 1-1 1h-1v-5h1z"/></svg>',
    people:
      '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false"><path fill="currentColor" d="M9 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm7.5-.5a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM9 14c-3.3 0-7 1.6-7 4.5V20h14v-1.5C16 15.6 12.3 14 9 14zm7.5-.5c-.6 0-1.2.1-1.8.2 1.4 1 2.3 2.4 2.3 4.3V20h5v-1.6c0-2.6-3-4.9-5.5-4.9z"/></svg>',
  };

  function icon(name, cls) {
    const span = h("span", { class: cls || "icon" });
    span.innerHTML = ICONS[name]; // constant markup, see ICONS
    return span;
  }

  function initials(name) {
    const parts = String(name || "").trim().split(/\s+/).filter(Boolean);
    if (!parts.length) return "?";
    const a = parts[0][0] || "";
    const b = parts.length > 1 ? parts[parts.length - 1][0] : "";
    return (a + b).toUpperCase();
  }

  const URL_RE = /\bhttps?:\/\/[^\s<>"')\]]+[^\s<>"')\].,;:!?]/gi;

  // Text → DOM nodes, turning http(s) URLs into links. No markup is ever parsed.
  function richText(text) {
    const frag = document.createDocumentFragment();
    const s = String(text ?? "");
    let last = 0;
    for (const m of s.matchAll(URL_RE)) {
      if (m.index > last) frag.append(document.createTextNode(s.slice(last, m.index)));
      const a = document.createElement("a");
      a.href = m[0];
      a.textContent = m[0];
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      frag.append(a);
      last = m.index + m[0].length;
    }
    if (last < s.length) frag.append(document.createTextNode(s.slice(last)));
    return frag;
  }

  function parseDate(iso) {
    if (!iso) return null;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  // ---------------------------------------------------------------- styles
  const CSS = `
:host { all: initial; }
*, *::before, *::after { box-sizing: border-box; }
.root {
  --hf-accent: var(--hf-accent-in, #4f46e5);
  --hf-accent-ink: var(--hf-accent-ink-in, #fff);
  --hf-bg: #ffffff;
  --hf-soft: #f4f5f8;
  --hf-line: #e6e8ee;
  --hf-ink: #1c2030;
  --hf-muted: #6b7185;
  --hf-human: #0f766e;
  --hf-human-soft: #e7f6f3;
  --hf-danger: #b42318;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--hf-ink);
  -webkit-font-smoothing: antialiased;
}
button, textarea { font: inherit; color: inherit; }
.icon { display: inline-flex; align-items: center; justify-content: center; line-height: 0; }

/* launcher */
.launcher {
  position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
  width: 60px; height: 60px; border-radius: 50%; border: 0; cursor: pointer;
  background: var(--hf-accent); color: var(--hf-accent-ink);
  box-shadow: 0 8px 24px rgba(20, 24, 40, .25), 0 2px 6px rgba(20, 24, 40, .15);
  display: flex; align-items: center; justify-content: center;
  transition: transform .18s ease, box-shadow .18s ease;
}
.launcher:hover { transform: translateY(-2px) scale(1.03); }
.launcher:focus-visible { outline: 3px solid #fff; box-shadow: 0 0 0 6px var(--hf-accent); }
.launcher .icon-open, .launcher .icon-close { position: absolute; transition: opacity .15s, transform .2s; }
.launcher .icon-close { opacity: 0; transform: rotate(-45deg); }
.launcher[aria-expanded="true"] .icon-open { opacity: 0; transform: rotate(45deg); }
.launcher[aria-expanded="true"] .icon-close { opacity: 1; transform: none; }
.unread {
  position: absolute; top: -2px; right: -2px; min-width: 20px; height: 20px; padding: 0 6px;
  border-radius: 10px; background: #e11d48; color: #fff; font-size: 12px; font-weight: 700;
  display: flex; align-items: center; justify-content: center; border: 2px solid #fff;
}
.unread[hidden] { display: none; }

/* panel */
.panel {
  background: var(--hf-bg); display: flex; flex-direction: column; overflow: hidden;
}
.mode-bubble .panel {
  position: fixed; right: 20px; bottom: 92px; z-index: 2147483000;
  width: 380px; height: min(640px, calc(100vh - 120px)); max-height: calc(100vh - 120px);
  border-radius: 16px; border: 1px solid rgba(20, 24, 40, .08);
  box-shadow: 0 24px 64px rgba(20, 24, 40, .22), 0 4px 16px rgba(20, 24, 40, .10);
  transform-origin: bottom right; animation: hf-pop .18s ease-out;
}
.mode-bubble .panel[hidden] { display: none; }
@keyframes hf-pop { from { opacity: 0; transform: translateY(8px) scale(.98); } to { opacity: 1; transform: none; } }
@media (max-width: 480px) {
  .mode-bubble .panel { right: 0; bottom: 0; width: 100vw; height: 100%; max-height: none; border-radius: 0; }
  .mode-bubble.open .launcher { display: none; }
}
.mode-page .panel {
  position: relative; width: 100%; height: 100%; min-height: 420px;
  border-radius: inherit;
}

/* header */
.header {
  display: flex; align-items: center; gap: 12px; padding: 14px 14px 14px 18px;
  background: var(--hf-accent); color: var(--hf-accent-ink);
}
.mode-page .header { background: var(--hf-bg); color: var(--hf-ink); border-bottom: 1px solid var(--hf-line); }
.header-avatar {
  flex: none; width: 40px; height: 40px; border-radius: 50%;
  display: flex; align-items: center; justify-content: center;
  background: rgba(255, 255, 255, .18); color: inherit; position: relative;
}
.mode-page .header-avatar { background: var(--hf-accent); color: var(--hf-accent-ink); }
.header-avatar::after {
  content: ""; position: absolute; right: 0; bottom: 0; width: 11px; height: 11px; border-radius: 50%;
  background: #22c55e; border: 2px solid var(--hf-accent);
}
.mode-page .header-avatar::after { border-color: var(--hf-bg); }
.owner-human .header-avatar { background: var(--hf-human); color: #fff; }
.header-text { min-width: 0; flex: 1; }
.title { margin: 0; font-size: 16px; font-weight: 650; line-height: 1.25; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.status { display: flex; align-items: center; gap: 6px; font-size: 13px; opacity: .92; }
.status-dot { width: 7px; height: 7px; border-radius: 50%; background: currentColor; opacity: .75; }
.header-btn {
  flex: none; width: 36px; height: 36px; border-radius: 10px; border: 0; background: transparent; cursor: pointer;
  color: inherit; display: flex; align-items: center; justify-content: center;
}
.header-btn:hover { background: rgba(255, 255, 255, .16); }
.header-btn:focus-visible { outline: 2px solid currentColor; outline-offset: 2px; }
.subtitle { margin: 0; font-size: 13px; opacity: .92; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.subtitle[hidden] { display: none; }

/* banner under header (human handoff state) */
.banner {
  display: flex; align-items: center; gap: 8px; padding: 8px 16px; font-size: 13px;
  background: var(--hf-human-soft); color: var(--hf-human); border-bottom: 1px solid #cdebe5;
}
.banner[hidden] { display: none; }
.banner.warn { background: #fff7ed; color: #9a3412; border-color: #fed7aa; }
.banner-text { flex: 1; min-width: 0; }
.banner-text:empty { display: none; }
.back-btn {
  flex: none; border: 1px solid currentColor; background: var(--hf-bg); color: var(--hf-human); cursor: pointer;
  border-radius: 999px; padding: 5px 12px; font-size: 13px; font-weight: 600; line-height: 1.2;
}
.back-btn:hover { background: var(--hf-human); color: #fff; }
.back-btn:focus-visible { outline: 3px solid var(--hf-human); outline-offset: 2px; }
.back-btn:disabled { opacity: .6; cursor: default; }
.back-btn[hidden] { display: none; }

/* transcript */
.messages {
  flex: 1; overflow-y: auto; padding: 18px 16px 8px; background: var(--hf-soft);
  display: flex; flex-direction: column; gap: 2px;
}
.mode-page .messages { padding: 24px max(16px, calc((100% - 760px) / 2)) 12px; }
.empty { margin: auto; color: var(--hf-muted); font-size: 14px; text-align: center; padding: 24px; }
.msg { display: flex; gap: 8px; align-items: flex-end; max-width: 100%; }
.msg.first { margin-top: 10px; }
.msg .avatar {
  flex: none; width: 28px; height: 28px; border-radius: 50%; font-size: 11px; font-weight: 700;
  display: flex; align-items: center; justify-content: center; visibility: hidden;
}
.msg.last .avatar { visibility: visible; }
.msg[data-role="assistant"] .avatar { background: var(--hf-accent); color: var(--hf-accent-ink); }
.msg[data-role="human_agent"] .avatar, .joined .avatar, .typing[data-who="human"] .avatar { background: var(--hf-human); color: #fff; }
.avatar { overflow: hidden; }
.avatar img { width: 100%; height: 100%; object-fit: cover; display: block; }
.joined {
  display: flex; align-items: center; justify-content: center; gap: 8px; margin: 14px 0 4px;
  font-size: 13px; color: var(--hf-muted);
}
.joined .avatar {
  flex: none; width: 22px; height: 22px; border-radius: 50%; font-size: 10px; font-weight: 700;
  display: flex; align-items: center; justify-content: center;
}
.body { display: flex; flex-direction: column; min-width: 0; max-width: 80%; }
.meta { font-size: 12px; color: var(--hf-muted); margin: 0 0 3px 4px; display: none; }
.msg.first .meta { display: block; }
.meta .who { font-weight: 600; color: var(--hf-ink); }
.msg[data-role="human_agent"] .meta .who { color: var(--hf-human); }
.bubble {
  padding: 9px 13px; border-radius: 18px; white-space: pre-wrap; overflow-wrap: anywhere;
  background: var(--hf-bg); border: 1px solid var(--hf-line);
}
.bubble a { color: inherit; text-decoration: underline; text-underline-offset: 2px; }
.msg[data-role="assistant"] .bubble { border-bottom-left-radius: 6px; }
.msg[data-role="human_agent"] .bubble { background: var(--hf-human-soft); border-color: #bfe5de; border-bottom-left-radius: 6px; }
.msg[data-role="user"] { justify-content: flex-end; }
.msg[data-role="user"] .avatar { display: none; }
.msg[data-role="user"] .body { align-items: flex-end; }
.msg[data-role="user"] .meta { margin: 0 4px 3px 0; }
.msg[data-role="user"] .bubble { background: var(--hf-accent); color: var(--hf-accent-ink); border-color: transparent; border-bottom-right-radius: 6px; }
.msg.pending .bubble { opacity: .6; }
.msg[data-role="system"] { justify-content: center; margin: 12px 0 6px; }
.msg[data-role="system"] .avatar, .msg[data-role="system"] .meta { display: none; }
.msg[data-role="system"] .body { max-width: 90%; align-items: center; }
.msg[data-role="system"] .bubble {
  background: transparent; border: 0; padding: 2px 8px; color: var(--hf-muted); font-size: 13px; text-align: center;
}
.msg[data-role="system"] .bubble::before, .msg[data-role="system"] .bubble::after { content: "— "; opacity: .5; }
.msg[data-role="system"] .bubble::after { content: " —"; }
.time { font-size: 11px; color: var(--hf-muted); margin: 3px 6px 0; display: none; }
.msg.last .time { display: block; }
.msg[data-role="system"] .time { display: none; }

.typing { display: flex; gap: 8px; align-items: flex-end; margin-top: 10px; }
.typing[hidden] { display: none; }
.typing .avatar {
  flex: none; width: 28px; height: 28px; border-radius: 50%; font-size: 11px; font-weight: 700;
  display: flex; align-items: center; justify-content: center;
  background: var(--hf-accent); color: var(--hf-accent-ink);
}
.typing-body { display: flex; flex-direction: column; gap: 3px; }
.typing-text { font-size: 12px; color: var(--hf-muted); margin-left: 4px; }
.typing-text:empty { display: none; }
.dots { align-self: flex-start; display: inline-flex; gap: 4px; padding: 13px 14px; border-radius: 18px; border-bottom-left-radius: 6px; background: var(--hf-bg); border: 1px solid var(--hf-line); }
.dots i { width: 7px; height: 7px; border-radius: 50%; background: #a3a8b8; animation: hf-blink 1.2s infinite ease-in-out; }
.dots i:nth-child(2) { animation-delay: .15s; }
.dots i:nth-child(3) { animation-delay: .3s; }
@keyframes hf-blink { 0%, 80%, 100% { opacity: .3; transform: translateY(0); } 40% { opacity: 1; transform: translateY(-3px); } }
@media (prefers-reduced-motion: reduce) { .dots i, .panel, .launcher { animation: none !important; transition: none !important; } }

/* composer */
.error {
  margin: 0; padding: 8px 16px; font-size: 13px; color: var(--hf-danger); background: #fef3f2;
  border-top: 1px solid #fecdca; display: flex; gap: 8px; align-items: center;
}
.error[hidden] { display: none; }
.composer {
  display: flex; align-items: flex-end; gap: 8px; padding: 10px 10px 10px 14px;
  border-top: 1px solid var(--hf-line); background: var(--hf-bg);
}
.mode-page .composer { padding: 14px max(14px, calc((100% - 760px) / 2)); }
.input {
  flex: 1; resize: none; border: 1px solid var(--hf-line); border-radius: 12px; background: var(--hf-soft);
  padding: 10px 12px; min-height: 44px; max-height: 140px; line-height: 1.4; outline: none;
  transition: border-color .15s, background .15s, box-shadow .15s;
}
.input:focus { border-color: var(--hf-accent); background: var(--hf-bg); box-shadow: 0 0 0 3px color-mix(in srgb, var(--hf-accent) 18%, transparent); }
.input::placeholder { color: #9aa0b2; }
.send {
  flex: none; width: 44px; height: 44px; border-radius: 12px; border: 0; cursor: pointer;
  background: var(--hf-accent); color: var(--hf-accent-ink); display: flex; align-items: center; justify-content: center;
  transition: opacity .15s, transform .1s;
}
.send:active { transform: scale(.96); }
.send:disabled { opacity: .45; cursor: default; }
.send:focus-visible { outline: 3px solid color-mix(in srgb, var(--hf-accent) 40%, transparent); outline-offset: 2px; }
.input:focus-visible { outline: 2px solid var(--hf-accent); outline-offset: 1px; }
.messages:focus-visible { outline: 2px solid var(--hf-accent); outline-offset: -2px; }
.footer a:focus-visible { outline: 2px solid var(--hf-accent); outline-offset: 2px; }
.footer { text-align: center; font-size: 11px; color: var(--hf-muted); padding: 0 0 8px; background: var(--hf-bg); }
.footer a { color: inherit; text-decoration: none; font-weight: 600; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
`;

  // ---------------------------------------------------------------- build the UI
  const hostEl = document.createElement("div");
  hostEl.setAttribute("data-handoff-widget", AGENT);
  const shadow = hostEl.attachShadow({ mode: "open" });
  if ("adoptedStyleSheets" in shadow && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.append(h("style", { text: CSS }));
  }

  const root = h("div", { class: `root mode-${MODE} owner-bot` });
  if (ds.color) root.style.setProperty("--hf-accent-in", ds.color);
  if (ds.textColor) root.style.setProperty("--hf-accent-ink-in", ds.textColor);
  shadow.append(root);

  const panelId = "handoff-panel";
  const titleEl = h("h2", { class: "title", id: "hf-title", text: ds.title || L("title") });
  const statusText = h("span", { class: "status-text", text: L("ai_assistant") });
  const statusEl = h(
    "div",
    { class: "status", "data-testid": "handoff-status", "data-owner": "bot", role: "status", "aria-live": "polite" },
    h("span", { class: "status-dot", "aria-hidden": "true" }),
    statusText,
  );
  const headerAvatar = h("div", { class: "header-avatar", "aria-hidden": "true" }, icon("bot"));
  const closeBtn =
    MODE === "bubble"
      ? h("button", { class: "header-btn", type: "button", "aria-label": L("minimise_chat"), title: L("minimise") }, icon("chevron"))
      : null;
  const subtitleEl = h("p", { class: "subtitle", hidden: true, "data-testid": "handoff-subtitle" });
  const header = h("div", { class: "header" }, headerAvatar, h("div", { class: "header-text" }, titleEl, subtitleEl, statusEl), closeBtn);
  const bannerText = h("span", { class: "banner-text" });
  const backBtn = h("button", { class: "back-btn", type: "button", hidden: true, "data-testid": "handoff-back-to-ai", text: L("back_to_ai") });
  const banner = h("div", { class: "banner", hidden: true, "data-testid": "handoff-banner" }, bannerText, backBtn);

  const list = h("div", {
    class: "messages",
    role: "log",
    "aria-live": "polite",
    "aria-relevant": "additions",
    "aria-label": L("conversation"),
    "data-testid": "handoff-messages",
    tabindex: "0",
  });
  const emptyEl = h("p", { class: "empty", text: L("loading") });
  list.append(emptyEl);
  const typingAvatar = h("div", { class: "avatar", "aria-hidden": "true" }, icon("bot"));
  const typingText = h("span", { class: "typing-text", "data-testid": "handoff-typing-text" });
  const typingEl = h(
    "div",
    { class: "typing", hidden: true, "data-testid": "handoff-typing", "data-who": "assistant" },
    typingAvatar,
    h("div", { class: "typing-body" }, typingText, h("div", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i"))),
  );

  list.append(typingEl);
  const errorEl = h("p", { class: "error", role: "alert", hidden: true, "data-testid": "handoff-error" });
  const input = h("textarea", {
    class: "input",
    rows: "1",
    placeholder: L("placeholder"),
    "aria-label": "Message",
    maxlength: "10000",
    "data-testid": "handoff-input",
    enterkeyhint: "send",
  });
  const sendBtn = h(
    "button",
    { class: "send", type: "submit", "aria-label": L("send"), title: L("send_hint"), "data-testid": "handoff-send", disabled: true },
    icon("send"),
  );
  const form = h("form", { class: "composer", "aria-label": L("composer") }, input, sendBtn);
  const poweredBy = document.createTextNode(L("powered_by"));
  const footer = h("div", { class: "footer" }, poweredBy, h("strong", { text: "handoff" }));

  const panel = h(
    "section",
    {
      class: "panel",
      id: panelId,
      "data-testid": "handoff-panel",
      role: MODE === "bubble" ? "dialog" : "region",
      "aria-labelledby": "hf-title",
      hidden: MODE === "bubble",
    },
    header,
    banner,
    list,
    errorEl,
    form,
    footer,
  );

  let launcher = null;
  let unreadEl = null;
  // Says "2 new messages" to screen readers while the panel (and its log) is closed.
  const announcer = h("div", { class: "sr-only", role: "status", "aria-live": "polite", "data-testid": "handoff-announcer" });
  if (MODE === "bubble") {
    unreadEl = h("span", { class: "unread", hidden: true, "aria-hidden": "true", "data-testid": "handoff-unread" });
    launcher = h(
      "button",
      {
        class: "launcher",
        type: "button",
        "aria-label": L("open_chat"),
        "aria-expanded": "false",
        "aria-controls": panelId,
        "data-testid": "handoff-launcher",
      },
      icon("chat", "icon icon-open"),
      icon("close", "icon icon-close"),
      unreadEl,
    );
    root.append(panel, launcher, announcer);
  } else {
    root.append(panel);
  }

  function mount() {
    if (MODE === "page") {
      const container = document.getElementById("handoff-chat");
      hostEl.style.cssText = "all: initial; display: block; width: 100%; height: 100%;";
      if (container) container.append(hostEl);
      else {
        hostEl.style.height = "100vh";
        document.body.append(hostEl);
      }
    } else {
      hostEl.style.cssText = "all: initial;";
      document.body.append(hostEl);
    }
  }

  // ---------------------------------------------------------------- state
  const state = {
    agent: null, // {id, name, greeting}
    theme: {}, // the agent's widget settings: colours and texts
    session: null, // {id, token, lastEventId, seenId}, kept under the channel: see restore()
    owner: "bot",
    escalation: null,
    waiting: false, // the team owns the conversation and nobody has answered yet
    open: false,
    unread: 0,
    started: null, // Promise of the conversation being ready
    es: null,
    esRetry: 0,
    esTimer: null,
    outbox: [], // messages not yet accepted by the server
    flushing: false,
    flushTimer: null,
    sendRetry: 0,
    aiTyping: false,
    humanTyping: null, // {name, avatar_url} of the person typing in the inbox
    humanTypingTimer: null,
    backing: false,
  };
  const rendered = new Map(); // message id -> element
  window.__handoffWidgets[WIDGET_ID] = { state, shadow };

  // ---------------------------------------------------------------- rendering
  // The AI signs with the name the header shows (the widget's title, else the agent's name),
  // read when it is drawn: renaming the widget renames what is already on screen too.
  function assistantName() {
    return setting("title") || (state.agent && state.agent.name) || L("ai_assistant");
  }

  function labelFor(m) {
    switch (m.role) {
      case "user":
        return L("you");
      case "assistant":
        return assistantName();
      case "human_agent":
        return (m.author && m.author.name) || L("support_team");
      default:
        return "";
    }
  }

  function subLabelFor(m) {
    if (m.role === "assistant") return L("ai");
    if (m.role === "human_agent") return L("support_team");
    return "";
  }

  // A person's picture (http(s) only), falling back to their initials if it cannot load.
  function personAvatar(node, name, avatarUrl) {
    const src = safeImageUrl(avatarUrl);
    const fallback = () => node.replaceChildren(document.createTextNode(initials(name || "Support")));
    if (!src) {
      fallback();
      return node;
    }
    const img = h("img", { src, alt: "", referrerpolicy: "no-referrer", loading: "lazy", "data-testid": "handoff-avatar-img" });
    img.addEventListener("error", fallback, { once: true });
    node.replaceChildren(img);
    return node;
  }

  function avatarFor(m) {
    const a = h("div", { class: "avatar", "aria-hidden": "true" });
    if (m.role === "assistant") a.append(icon("bot"));
    else if (m.role === "human_agent") personAvatar(a, m.author && m.author.name, m.author && m.author.avatar_url);
    return a;
  }

  function groupKey(node) {
    return `${node.dataset.role}|${node.dataset.author || ""}`;
  }

  function buildMessage(m, pending) {
    const role = typeof m.role === "string" ? m.role : "system";
    const when = parseDate(m.created_at);
    const author = role === "human_agent" && m.author && typeof m.author === "object" ? m.author : null;
    const node = h("div", {
      class: "msg" + (pending ? " pending" : ""),
      "data-testid": "handoff-message",
      "data-role": role,
      "data-author": author && author.name ? author.name : null,
      // Who joined: the member id, or the name of an agent in an external helpdesk.
      "data-author-key": author ? String(author.id ?? author.name ?? "") : null,
      "data-avatar": author && safeImageUrl(author.avatar_url) ? author.avatar_url : null,
    });
    if (!pending && m.id != null) node.dataset.id = String(m.id);
    const label = labelFor({ ...m, role });
    const sub = subLabelFor({ ...m, role });
    const meta = h("div", { class: "meta" }, h("span", { class: "who", "data-testid": "handoff-who", text: label }), sub && role !== "user" ? ` · ${sub}` : null);
    const bubble = h("div", { class: "bubble" }, richText(m.text));
    if (when) bubble.title = fullFmt.format(when);
    const time = h("time", { class: "time", datetime: when ? when.toISOString() : null, text: when ? timeFmt.format(when) : pending ? L("sending") : "" });
    const srWho = h("span", { class: "sr-only", text: role === "system" ? "" : `${label}: ` });
    bubble.prepend(srWho);
    node.append(avatarFor({ ...m, role }), h("div", { class: "body" }, meta, bubble, time));
    return node;
  }

  function joinLine(node) {
    const name = node.dataset.author || L("someone");
    const line = h("div", { class: "joined", "data-testid": "handoff-joined" });
    line.append(personAvatar(h("span", { class: "avatar", "aria-hidden": "true" }), name, node.dataset.avatar), h("span", { text: L("joined", { name }) }));
    return line;
  }

  // Group consecutive messages of one author, and put "Dana joined the conversation" before
  // each person's first message of a stretch (a system message, the handback, ends one).
  function regroup() {
    const nodes = [...list.querySelectorAll(".msg")];
    nodes.forEach((n, i) => {
      const prev = nodes[i - 1];
      const next = nodes[i + 1];
      n.classList.toggle("first", !prev || groupKey(prev) !== groupKey(n));
      n.classList.toggle("last", !next || groupKey(next) !== groupKey(n));
    });
    const firsts = new Set();
    let joined = new Set();
    for (const n of nodes) {
      if (n.dataset.role === "system") joined = new Set();
      else if (n.dataset.role === "human_agent" && !joined.has(n.dataset.authorKey)) {
        joined.add(n.dataset.authorKey);
        firsts.add(n);
      }
    }
    for (const line of [...list.querySelectorAll(".joined")]) {
      const target = line.nextElementSibling;
      if (firsts.has(target)) firsts.delete(target); // already in place
      else line.remove();
    }
    for (const n of firsts) list.insertBefore(joinLine(n), n);
  }

  // Follow new messages unless the visitor scrolled up to read older ones.
  let stickToBottom = true;
  list.addEventListener("scroll", () => {
    stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }, { passive: true });
  function nearBottom() {
    return stickToBottom || list.clientHeight === 0;
  }

  function scrollToBottom() {
    list.scrollTop = list.scrollHeight;
    stickToBottom = true;
  }

  function insertByOrder(node, id) {
    // Keep the transcript ordered by message id; pending bubbles stay at the end.
    let before = null;
    if (id != null) {
      for (const el of list.querySelectorAll(".msg")) {
        if (el.classList.contains("pending") || (el.dataset.id && Number(el.dataset.id) > id)) {
          before = el;
          break;
        }
      }
    }
    // A "joined" line belongs to the message after it.
    if (before && before.previousElementSibling && before.previousElementSibling.classList.contains("joined")) {
      before = before.previousElementSibling;
    }
    list.insertBefore(node, before || typingEl);
  }

  function pendingBubble(clientId) {
    return [...list.querySelectorAll(".msg.pending")].find((el) => el.dataset.clientId === clientId) || null;
  }

  function addMessage(m) {
    if (!m || typeof m !== "object") return false;
    const id = m.id == null ? null : Number(m.id);
    if (id != null && rendered.has(id)) return false;
    emptyEl.remove();
    const stick = nearBottom();
    // Our own unsent bubble becomes the server's message (the POST response and the live
    // stream race each other; either may come first).
    if (m.role === "user") {
      const pend =
        typeof m.client_id === "string"
          ? pendingBubble(m.client_id)
          : [...list.querySelectorAll(".msg.pending")].find((el) => el.dataset.text === String(m.text));
      if (pend) pend.remove();
    }
    const node = buildMessage(m, false);
    if (id != null) rendered.set(id, node);
    insertByOrder(node, id);
    regroup();
    if (stick || m.role === "user") scrollToBottom();
    if (id != null && m.role !== "user") noteArrival(id, m);
    return true;
  }

  function addPending(item) {
    emptyEl.remove();
    const node = buildMessage({ role: "user", text: item.text, created_at: null }, true);
    node.dataset.text = item.text;
    node.dataset.clientId = item.client_id;
    list.insertBefore(node, typingEl);
    regroup();
    scrollToBottom();
    return node;
  }

  function setPendingStatus(clientId, text) {
    const node = pendingBubble(clientId);
    const time = node && node.querySelector(".time");
    if (time) time.textContent = text;
  }

  // ---------------------------------------------------------------- unread
  function visible() {
    return MODE === "page" || (state.open && !document.hidden);
  }

  function markSeen() {
    const s = state.session;
    if (!s) return;
    let newest = s.seenId ?? 0;
    for (const id of rendered.keys()) newest = Math.max(newest, id);
    if (newest !== s.seenId) {
      s.seenId = newest;
      saveSession(s);
    }
  }

  // A message from the AI or the team arrived: count it unless the visitor is looking.
  function noteArrival(id, m) {
    const s = state.session;
    if (!s) return;
    if (visible()) {
      markSeen();
      return;
    }
    if (s.seenId == null || id <= s.seenId) return;
    state.unread += 1;
    renderUnread();
    const who = labelFor(m);
    const count = String(state.unread);
    const news = state.unread === 1 ? L("arrived_one") : L("arrived_many", { count });
    announcer.textContent = who ? L("arrived_from", { news, name: who }) : `${news}.`;
  }

  function launcherLabel() {
    return setting("launcher_label") || L("open_chat");
  }

  function renderUnread() {
    if (!unreadEl) return;
    unreadEl.hidden = state.unread <= 0;
    unreadEl.textContent = state.unread > 9 ? "9+" : String(state.unread);
    const base = launcherLabel();
    launcher.title = base;
    const count = String(state.unread);
    const unread = state.unread === 1 ? L("unread_one", { label: base }) : L("unread_many", { label: base, count });
    launcher.setAttribute("aria-label", state.unread > 0 ? unread : base);
  }

  function clearUnread() {
    markSeen();
    if (state.unread === 0) return;
    state.unread = 0;
    announcer.textContent = "";
    renderUnread();
  }

  function showError(msg) {
    errorEl.textContent = msg || "";
    errorEl.hidden = !msg;
  }

  // ---------------------------------------------------------------- typing indicators
  function renderTyping() {
    const human = state.humanTyping;
    const on = !!human || state.aiTyping;
    typingEl.hidden = !on;
    if (!on) return;
    const stick = nearBottom();
    if (human) {
      typingEl.dataset.who = "human";
      personAvatar(typingAvatar, human.name, human.avatar_url);
      typingText.className = "typing-text";
      typingText.textContent = L("typing", { name: human.name });
    } else {
      typingEl.dataset.who = "assistant";
      typingAvatar.replaceChildren(icon("bot"));
      typingText.className = "typing-text sr-only";
      typingText.textContent = L("assistant_typing");
    }
    if (stick) scrollToBottom();
  }

  function setTyping(on) {
    state.aiTyping = on;
    renderTyping();
  }

  function showHumanTyping(author) {
    clearTimeout(state.humanTypingTimer);
    state.humanTyping = { name: String(author.name).slice(0, 200), avatar_url: author.avatar_url };
    state.humanTypingTimer = setTimeout(hideHumanTyping, HUMAN_TYPING_MS);
    renderTyping();
  }

  function hideHumanTyping() {
    clearTimeout(state.humanTypingTimer);
    state.humanTyping = null;
    renderTyping();
  }

  // ---------------------------------------------------------------- owner and theme
  function applyConversation(c) {
    if (!c || typeof c !== "object") return;
    if (typeof c.owner === "string") state.owner = c.owner;
    if ("escalation" in c) state.escalation = c.escalation || null;
    if (LANGUAGES.includes(c.language) && c.language !== i18n.conversation) {
      i18n.conversation = c.language;
      renderLabels();
    }
    if (typeof c.waiting === "boolean") state.waiting = c.waiting;
    if (state.owner !== "human") state.waiting = false;
    renderOwner();
  }

  function renderOwner() {
    const human = state.owner === "human";
    root.classList.toggle("owner-human", human);
    root.classList.toggle("owner-bot", !human);
    statusEl.dataset.owner = human ? "human" : "bot";
    statusText.textContent = human ? L("support_team") : L("ai_assistant");
    headerAvatar.replaceChildren(icon(human ? "people" : "bot"));
    const esc = state.escalation;
    let text = "";
    let warn = false;
    if (human) {
      if (esc && esc.status === "failed") {
        text = L("team_unreachable");
        warn = true;
      } else if (esc && esc.status === "open" && !state.waiting) {
        text = L("with_team");
      } else {
        text = L("team_will_reply");
      }
    }
    const offerBack = human && state.waiting;
    // The banner takes its height from the transcript: keep the newest message in view.
    const stick = nearBottom();
    bannerText.textContent = text;
    banner.classList.toggle("warn", warn);
    if (backBtn.hidden === offerBack) {
      // The button is about to disappear: keep keyboard focus in the chat.
      if (!offerBack && shadow.activeElement === backBtn) input.focus();
      backBtn.hidden = !offerBack;
    }
    banner.hidden = !text && !offerBack;
    if (stick) scrollToBottom();
  }

  function renderAgent() {
    titleEl.textContent = setting("title") || (state.agent && state.agent.name) || ds.title || L("title");
    const name = assistantName();
    for (const node of list.querySelectorAll('.msg[data-role="assistant"]')) {
      node.querySelector(".who").textContent = name;
      node.querySelector(".bubble > .sr-only").textContent = `${name}: `;
    }
  }

  function applyTheme() {
    const t = state.theme || {};
    const colour = (v) => (typeof v === "string" && COLOUR_RE.test(v) ? v : null);
    if (!ds.color && colour(t.primary_color)) root.style.setProperty("--hf-accent-in", t.primary_color);
    if (!ds.textColor && colour(t.text_color)) root.style.setProperty("--hf-accent-ink-in", t.text_color);
    subtitleEl.textContent = setting("subtitle") || "";
    subtitleEl.hidden = !setting("subtitle");
    input.placeholder = setting("placeholder") || L("placeholder");
    backBtn.textContent = setting("back_to_ai_label") || L("back_to_ai");
    renderAgent();
    renderUnread();
  }

  function renderEmpty() {
    if (list.querySelector(".msg")) return;
    emptyEl.textContent = greeting() || L("greeting");
    if (!emptyEl.isConnected) list.prepend(emptyEl);
  }

  // Say the fixed texts again in the visitor's language (it can change with their messages).
  function renderLabels() {
    root.setAttribute("lang", i18n.conversation || i18n.language || "en");
    if (closeBtn) {
      closeBtn.setAttribute("aria-label", L("minimise_chat"));
      closeBtn.title = L("minimise");
    }
    list.setAttribute("aria-label", L("conversation"));
    sendBtn.setAttribute("aria-label", L("send"));
    sendBtn.title = L("send_hint");
    form.setAttribute("aria-label", L("composer"));
    poweredBy.textContent = L("powered_by");
    applyTheme();
    renderOwner();
    if (emptyEl.isConnected && state.agent) renderEmpty();
  }

  // ---------------------------------------------------------------- conversation lifecycle
  async function loadTheme() {
    try {
      const t = await api(`/api/v1/agents/${encodeURIComponent(AGENT)}/widget`);
      state.theme = t && typeof t === "object" ? t : {};
    } catch {
      state.theme = {}; // the defaults are fine
    }
    applyTheme();
  }

  async function loadAgent() {
    if (state.agent) return state.agent;
    try {
      state.agent = await api(`/api/v1/agents/${encodeURIComponent(AGENT)}/public`);
      adoptChannel(state.agent.modes);
      i18n.labels = state.agent.labels || null;
      if (!i18n.language && LANGUAGES.includes(state.agent.language)) i18n.language = state.agent.language;
      renderLabels();
    } catch (err) {
      if (err.status === 404) showError(L("not_available"));
      else showError(err.message);
      throw err;
    }
    return state.agent;
  }

  // Take what this browser kept under the channel: the conversation and the unsent messages
  // (after any written before the channel was known).
  function restore() {
    state.session = loadSession();
    const kept = loadOutbox();
    for (const item of kept) addPending(item);
    state.outbox = [...kept, ...state.outbox];
    if (kept.length < state.outbox.length) saveOutbox(state.outbox);
  }

  // The server says which channel this mode opens: remember it for the next visit and, when
  // the page named none and none was remembered, open on it from now on.
  function adoptChannel(modes) {
    const channel = modes && typeof modes[MODE] === "string" ? modes[MODE] : "";
    if (!channel || ds.channel) return;
    storage.set("localStorage", CHANNEL_KEY, channel);
    if (CHANNEL) return;
    CHANNEL = channel;
    restore();
    if (state.open) storage.set("sessionStorage", keyOf(":open"), "1");
  }

  // Resolves once the channel is known, and with it the conversation this browser kept.
  async function channelKnown() {
    if (!CHANNEL) await loadAgent();
    if (!CHANNEL) throw Object.assign(new Error(L("not_available")), { status: 404 });
  }

  async function createConversation() {
    const data = await api(`/api/v1/agents/${encodeURIComponent(AGENT)}/conversations`, {
      method: "POST",
      body: PAGE_LANG ? { channel: CHANNEL, lang: PAGE_LANG } : { channel: CHANNEL },
    });
    state.session = { id: data.id, token: data.token, lastEventId: 0, seenId: 0 };
    saveSession(state.session);
    applyConversation(data);
    for (const m of data.messages || []) addMessage(m);
    connectEvents();
    return state.session;
  }

  // Load the whole conversation (messages already shown are skipped by id).
  async function catchUp(s) {
    const data = await api(`/api/v1/conversations/${encodeURIComponent(s.id)}`, { token: s.token });
    if (state.session !== s) return;
    if (s.seenId == null) {
      // A session saved before unread tracking: what exists now counts as seen.
      s.seenId = Math.max(0, ...(data.messages || []).map((m) => Number(m.id) || 0));
      saveSession(s);
    }
    applyConversation({ ...data, waiting: typeof data.waiting === "boolean" ? data.waiting : waitingIn(data) });
    for (const m of data.messages || []) addMessage(m);
  }

  // Whether the visitor still waits for a first human answer, from a conversation's messages
  // (for a conversation shape that does not say so itself).
  function waitingIn(data) {
    const esc = data.escalation;
    if (data.owner !== "human" || !esc || esc.status === "solved") return false;
    const since = parseDate(esc.created_at);
    return !(data.messages || []).some((m) => m.role === "human_agent" && (!since || (parseDate(m.created_at) || 0) >= since));
  }

  async function resumeConversation() {
    const s = state.session;
    await catchUp(s);
    connectEvents();
    return s;
  }

  function resetConversation() {
    disconnectEvents();
    saveSession(null);
    state.session = null;
    state.owner = "bot";
    state.escalation = null;
    state.waiting = false;
    rendered.clear();
    // Unsent messages stay: they go to the next conversation.
    for (const el of list.querySelectorAll(".msg:not(.pending), .joined")) el.remove();
    hideHumanTyping();
    renderOwner();
  }

  // Resolves once a conversation exists (resumed or created). Shared by open() and send().
  function ensureConversation({ create = true } = {}) {
    if (state.started) return state.started;
    const p = (async () => {
      await channelKnown();
      if (state.session) {
        try {
          return await resumeConversation();
        } catch (err) {
          if (err.status === 401 || err.status === 403 || err.status === 404) resetConversation();
          else throw err;
        }
      }
      if (!create) return null;
      return createConversation();
    })();
    state.started = p;
    p.then(
      (s) => {
        if (!s) state.started = null;
        renderEmpty();
      },
      (err) => {
        state.started = null;
        if (err.status !== 0 || !state.outbox.length) showError(err.message);
        renderEmpty();
      },
    );
    return p;
  }

  // ---------------------------------------------------------------- live events (SSE)
  function disconnectEvents() {
    clearTimeout(state.esTimer);
    if (state.es) {
      state.es.close();
      state.es = null;
    }
  }

  function connectEvents() {
    if (!state.session || typeof EventSource !== "function") return;
    disconnectEvents();
    const s = state.session;
    // The browser resumes its own retries with Last-Event-ID; a stream we open ourselves
    // says where to resume with `after`.
    let url = `${API}/api/v1/conversations/${encodeURIComponent(s.id)}/events?access_token=${encodeURIComponent(s.token)}`;
    if (s.lastEventId) url += `&after=${encodeURIComponent(String(s.lastEventId))}`;
    const es = new EventSource(url);
    state.es = es;
    const track = (ev) => {
      const n = Number(ev.lastEventId);
      if (state.session === s && Number.isSafeInteger(n) && n > (s.lastEventId || 0)) {
        s.lastEventId = n;
        saveSession(s);
      }
    };
    const parse = (ev) => {
      track(ev);
      try {
        return JSON.parse(ev.data);
      } catch {
        return null;
      }
    };
    es.addEventListener("open", () => {
      state.esRetry = 0;
    });
    es.addEventListener("message", (ev) => {
      let m = parse(ev);
      if (m && m.message && typeof m.message === "object") m = m.message;
      if (!addMessage(m)) return;
      if (m.role === "human_agent") {
        hideHumanTyping();
        if (state.waiting) applyConversation({ waiting: false }); // a person answered
      }
      if (m.role === "assistant") setTyping(false);
    });
    es.addEventListener("conversation", (ev) => {
      applyConversation(parse(ev));
    });
    es.addEventListener("typing", (ev) => {
      const d = parse(ev);
      const author = d && d.author;
      if (author && typeof author.name === "string" && author.name) showHumanTyping(author);
    });
    es.addEventListener("error", () => {
      // The browser retries by itself (resuming with Last-Event-ID) unless the stream was
      // refused (401/404, wrong content type): then reconnect ourselves after catching up.
      if (es.readyState !== EventSource.CLOSED || state.es !== es) return;
      state.es = null;
      const delay = Math.min(30000, 1000 * 2 ** state.esRetry) + Math.random() * 500;
      state.esRetry += 1;
      state.esTimer = setTimeout(() => reconnect(s), delay);
    });
  }

  async function reconnect(s) {
    if (!state.session || state.session !== s) return;
    try {
      await resumeConversation();
    } catch (err) {
      if (err.status === 401 || err.status === 403 || err.status === 404) {
        resetConversation();
        state.started = null;
        renderEmpty();
      } else {
        connectEvents();
      }
    }
  }

  // ---------------------------------------------------------------- sending
  function normalizeSendResponse(data) {
    if (Array.isArray(data)) return { messages: data, conversation: null };
    if (data && Array.isArray(data.messages)) return { messages: data.messages, conversation: data.conversation || null };
    if (data && data.role && data.text !== undefined) return { messages: [data], conversation: null };
    return { messages: [], conversation: null };
  }

  function send() {
    const text = input.value.trim();
    if (!text) return;
    showError("");
    const item = { client_id: newClientId(), text };
    state.outbox.push(item);
    saveOutbox(state.outbox);
    addPending(item);
    input.value = "";
    autosize();
    updateSendButton();
    flush();
  }

  // Send the queued messages in order, each until the server has it; stop at the first
  // that cannot go yet (offline, server busy) and try again later.
  async function flush() {
    if (state.flushing) return;
    state.flushing = true;
    clearTimeout(state.flushTimer);
    try {
      while (state.outbox.length) {
        if (!(await deliver(state.outbox[0]))) break;
      }
    } finally {
      state.flushing = false;
      renderEmpty();
    }
  }

  function settle(item) {
    state.outbox = state.outbox.filter((x) => x.client_id !== item.client_id);
    saveOutbox(state.outbox);
    const node = pendingBubble(item.client_id);
    if (node) node.remove();
    regroup();
  }

  function retryLater(item, err) {
    setPendingStatus(item.client_id, err.status === 0 ? L("waiting_network") : L("retrying"));
    const delay = Math.min(30000, 2000 * 2 ** state.sendRetry) + Math.random() * 500;
    state.sendRetry += 1;
    clearTimeout(state.flushTimer);
    state.flushTimer = setTimeout(flush, delay);
  }

  // Returns true when the item is settled (stored, or refused for good), false to retry later.
  async function deliver(item) {
    const awaitsAi = state.owner !== "human";
    if (awaitsAi) setTyping(true);
    setPendingStatus(item.client_id, L("sending"));
    try {
      for (let attempt = 1; ; attempt += 1) {
        const s = await ensureConversation();
        try {
          const data = await api(`/api/v1/conversations/${encodeURIComponent(s.id)}/messages`, {
            method: "POST",
            token: s.token,
            body: { text: item.text, client_id: item.client_id },
          });
          const { messages, conversation } = normalizeSendResponse(data);
          for (const m of messages) addMessage(m);
          if (conversation) applyConversation(conversation);
          // An empty answer means the server had the message already (an earlier try got
          // through but its answer was lost): fetch what we missed.
          if (!messages.length) await catchUp(s);
          settle(item);
          state.sendRetry = 0;
          showError("");
          return true;
        } catch (err) {
          // Conversation expired or was deleted: start a new one and send there, once.
          if ((err.status === 401 || err.status === 404) && attempt === 1) {
            resetConversation();
            state.started = null;
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      // 409: the conversation moved while the message was being answered; it was not stored.
      const transient = [0, 408, 409, 429].includes(err.status) || err.status >= 500;
      if (transient) {
        retryLater(item, err);
        return false;
      }
      // Refused for good (e.g. too long): give the text back to the visitor.
      settle(item);
      if (!input.value) {
        input.value = item.text;
        autosize();
        updateSendButton();
      }
      showError(err.message || L("not_sent"));
      return true;
    } finally {
      if (awaitsAi) setTyping(false);
    }
  }

  function updateSendButton() {
    sendBtn.disabled = !input.value.trim();
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 140) + "px";
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      send();
    }
  });
  input.addEventListener("input", () => {
    autosize();
    updateSendButton();
    if (!errorEl.hidden && input.value) showError("");
  });

  // ---------------------------------------------------------------- back to the AI
  async function backToAi() {
    const s = state.session;
    if (!s || state.backing) return;
    state.backing = true;
    // Disabling the focused button drops focus to the page: remember to put it in the chat.
    const hadFocus = shadow.activeElement === backBtn;
    backBtn.disabled = true;
    showError("");
    try {
      const data = await api(`/api/v1/conversations/${encodeURIComponent(s.id)}/back-to-bot`, {
        method: "POST",
        token: s.token,
        body: {},
      });
      const { messages, conversation } = normalizeSendResponse(data);
      for (const m of messages) addMessage(m);
      if (conversation) applyConversation(conversation);
    } catch (err) {
      showError(err.status === 0 ? err.message : err.message || L("failed"));
    } finally {
      state.backing = false;
      backBtn.disabled = false;
      renderOwner();
      if (hadFocus) (backBtn.hidden ? input : backBtn).focus();
    }
  }
  backBtn.addEventListener("click", backToAi);

  // ---------------------------------------------------------------- open / close
  function setOpen(open, { focus = true } = {}) {
    if (MODE !== "bubble") return;
    state.open = open;
    panel.hidden = !open;
    root.classList.toggle("open", open);
    launcher.setAttribute("aria-expanded", String(open));
    if (CHANNEL) storage.set("sessionStorage", keyOf(":open"), open ? "1" : null);
    if (open) {
      clearUnread();
      start();
      requestAnimationFrame(() => {
        scrollToBottom();
        if (focus) input.focus();
      });
    } else if (focus) {
      launcher.focus();
    }
  }

  function start() {
    loadAgent()
      .then(() => ensureConversation())
      .then(() => {
        clearUnread();
        if (state.outbox.length) flush();
      })
      .catch(() => {
        /* error already shown inline */
      });
  }

  if (launcher) {
    launcher.addEventListener("click", () => setOpen(!state.open));
    closeBtn.addEventListener("click", () => setOpen(false));
    root.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && state.open) setOpen(false);
    });
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.open) clearUnread();
  });
  // Back online: send what waited and reopen the stream if the browser gave up on it.
  window.addEventListener("online", () => {
    state.sendRetry = 0;
    if (state.outbox.length) flush();
    if (state.session && !state.es) {
      clearTimeout(state.esTimer);
      reconnect(state.session);
    }
  });

  function boot() {
    mount();
    renderOwner();
    loadTheme();
    // Messages queued before a reload wait where the visitor left them.
    if (CHANNEL) restore();
    // The labels in every language come with the agent: the launcher speaks the visitor's
    // language before the chat opens (a failure shows when it does). So does the channel,
    // when neither the page nor an earlier visit named it.
    const agentLoaded = loadAgent();
    agentLoaded.catch(() => {});
    if (MODE === "page") {
      state.open = true;
      start();
      input.focus({ preventScroll: true });
    } else if (CHANNEL) {
      resumeBubble();
    } else {
      agentLoaded.then(resumeBubble, () => {});
    }
  }

  // The launcher as the visitor left it: open again if it was open in this tab, else reconnect
  // a returning visitor quietly.
  function resumeBubble() {
    if (state.open) return; // opened meanwhile, which started the conversation
    if (storage.get("sessionStorage", keyOf(":open")) === "1") {
      setOpen(true, { focus: false });
    } else if (state.session) {
      // A returning visitor: reconnect quietly so replies from the team show as unread.
      loadAgent()
        .then(() => ensureConversation({ create: false }))
        .then(() => {
          if (state.outbox.length) flush();
        })
        .catch(() => {});
    }
  }

  if (document.body) boot();
  else document.addEventListener("DOMContentLoaded", boot, { once: true });

  // Small public API for host pages: window.Handoff.open() / close().
  window.Handoff = window.Handoff || {
    open: () => setOpen(true),
    close: () => setOpen(false),
  };
})();
