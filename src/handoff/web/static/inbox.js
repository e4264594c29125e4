/*!
 * handoff inbox — the support team's single-page app over the tickets API. Plain ES2020.
 *
 * Security: ticket, transcript, note and member data are inserted with textContent or as
 * attribute values only. The only innerHTML is for the constant icon markup below.
 */
(() => {
  "use strict";

  const staff = window.HandoffStaff;
  const { h, ApiError, request, toast } = staff;

  const app = document.getElementById("inbox-app");
  const BASE_TITLE = "Inbox · handoff";

  // ---------------------------------------------------------------- tiny helpers

  const ICONS = {
    logo:
      '<svg viewBox="0 0 32 32" width="26" height="26" aria-hidden="true" focusable="false"><rect width="32" height="32" rx="8" fill="#4f46e5"/><path d="M8 17.5c0-4.7 3.6-8.5 8-8.5s8 3.8 8 8.5" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round"/><circle cx="11" cy="21" r="3" fill="#fff"/><circle cx="21" cy="21" r="3" fill="#a5f3fc"/></svg>',
    check:
      '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round" d="M5 12.5l4.5 4.5L19 7.5"/></svg>',
    send:
      '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><path fill="currentColor" d="M3.4 20.4l17.5-7.5c.8-.4.8-1.5 0-1.8L3.4 3.6c-.7-.3-1.4.3-1.3 1l1 5.6c.1.5.5.8 1 .9l8.4 1-8.4 1c-.5.1-.9.4-1 .9l-1 5.6c-.1.7.6 1.3 1.3.8z"/></svg>',
    lock:
      '<svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 2a5 5 0 0 0-5 5v3H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-8a2 2 0 0 0-2-2h-1V7a5 5 0 0 0-5-5zm-3 8V7a3 3 0 1 1 6 0v3H9z"/></svg>',
    bot:
      '<svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 2a1.5 1.5 0 0 1 .75 2.8V6H17a3 3 0 0 1 3 3v8a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3V9a3 3 0 0 1 3-3h4.25V4.8A1.5 1.5 0 0 1 12 2zM9 11a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm6 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></svg>',
    search:
      '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><circle cx="11" cy="11" r="7" fill="none" stroke="currentColor" stroke-width="2"/><path d="M20 20l-4-4" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
    inbox:
      '<svg viewBox="0 0 24 24" width="40" height="40" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="1.6" stroke-linejoin="round" d="M3 13l3-8h12l3 8v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-6zm0 0h5l1.5 3h5L16 13h5"/></svg>',
    logout:
      '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M15 4h3a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-3M10 17l-5-5 5-5M5 12h11"/></svg>',
  };

  function icon(name, cls) {
    const span = h("span", { class: cls || "icon" });
    span.innerHTML = ICONS[name]; // constant markup only
    return span;
  }

  function initials(name) {
    const parts = String(name || "").trim().split(/[\s@._-]+/).filter(Boolean);
    if (!parts.length) return "?";
    const a = parts[0][0] || "";
    const b = parts.length > 1 ? parts[1][0] : "";
    return (a + b).toUpperCase();
  }

  // Stable pastel colour per name, for avatars.
  function hue(name) {
    let x = 0;
    for (const ch of String(name || "")) x = (x * 31 + ch.charCodeAt(0)) % 360;
    return x;
  }

  // Long opaque ids (uuid hex) read better shortened; the full id stays in the title.
  function shortId(id) {
    const s = String(id ?? "");
    return s.length > 10 ? s.slice(0, 8) : s;
  }

  // Initials on a stable colour, or the person's picture (http(s) URLs only).
  function avatar(name, cls, url) {
    const a = h("span", { class: `avatar ${cls || ""}`, "aria-hidden": "true", text: initials(name) });
    a.style.setProperty("--h", String(hue(name)));
    const src = safeImageUrl(url);
    if (src) {
      const img = h("img", { src, alt: "", referrerpolicy: "no-referrer", loading: "lazy" });
      img.addEventListener("error", () => img.remove(), { once: true });
      a.append(img);
    }
    return a;
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

  function parseDate(iso) {
    if (!iso) return null;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

  function relTime(iso) {
    const d = parseDate(iso);
    if (!d) return "";
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 45) return "just now";
    if (s < 3600) return `${Math.max(1, Math.round(s / 60))}m ago`;
    if (s < 86400) return `${Math.round(s / 3600)}h ago`;
    if (s < 7 * 86400) return `${Math.round(s / 86400)}d ago`;
    return dayFmt.format(d);
  }

  // A <time> that keeps itself fresh (see the ticker at the bottom).
  function timeEl(iso, cls) {
    const d = parseDate(iso);
    return h("time", {
      class: `reltime ${cls || ""}`,
      datetime: d ? d.toISOString() : null,
      title: d ? fullFmt.format(d) : null,
      "data-rel": iso || "",
      text: relTime(iso),
    });
  }

  const URL_RE = /\bhttps?:\/\/[^\s<>"')\]]+[^\s<>"')\].,;:!?]/gi;
  function richText(text) {
    const frag = document.createDocumentFragment();
    const s = String(text ?? "");
    let last = 0;
    for (const m of s.matchAll(URL_RE)) {
      if (m.index > last) frag.append(document.createTextNode(s.slice(last, m.index)));
      frag.append(h("a", { href: m[0], target: "_blank", rel: "noopener noreferrer nofollow", text: m[0] }));
      last = m.index + m[0].length;
    }
    if (last < s.length) frag.append(document.createTextNode(s.slice(last)));
    return frag;
  }

  // A long email wraps after its "@" and before its dots, never inside a word: each piece is
  // text, with a line-break opportunity (<wbr>) between them.
  function breakableEmail(email) {
    return String(email)
      .split(/(?<=@)|(?=\.)/)
      .flatMap((piece, i) => (i ? [h("wbr"), piece] : [piece]));
  }

  // What reasons and channels are called: GET /api/v1/vocabulary, read at boot.
  let CHANNELS = {};
  let REASONS = {};
  let REASON_TITLES = {};
  // A reason's chip says its name; its tooltip, what it means. An unknown code shows as is.
  const reasonTitle = (r) => REASON_TITLES[r] || r;
  const ROLE_LABEL = { user: "Visitor", assistant: "AI assistant", human_agent: "Agent", system: "System" };


  // ---------------------------------------------------------------- API


  // The list's views: each is a query of GET /api/v1/tickets; `count` names its figure in the
  // answer's `counts`. The server filters, orders, searches and pages.
  const VIEWS = {
    mine: { label: "Mine", params: { status: "open", assignee: "me" }, count: "mine", memberOnly: true },
    unassigned: { label: "Unassigned", params: { status: "open", assignee: "unassigned" }, count: "unassigned" },
    open: { label: "All open", params: { status: "open" }, count: "open" },
    waiting: { label: "Oldest waiting", title: "Nobody has answered yet, longest waiting first", params: { status: "waiting", sort: "oldest_waiting" }, count: "waiting" },
    solved: { label: "Solved", params: { status: "solved" } },
  };
  const PAGE_SIZE = 50;
  const SEARCH_DELAY_MS = 300;

  const state = {
    token: null,
    me: null,
    members: [],
    tab: "open",
    query: "", // the search box, as the server was last asked
    cursor: null, // the next page of the current view and search; null after the last
    counts: null,
    tickets: new Map(), // id -> list item
    order: [], // ids, in the view's order
    selectedId: null,
    detail: null, // full ticket with messages/notes
    seenItems: new Set(), // "m:ID" / "n:ID" rendered in the transcript
    unseen: new Set(), // ticket ids with updates the agent has not looked at
    mode: "reply", // or "note"
    sending: false,
    lastTypingPing: 0, // when the visitor was last told that we are typing
    savingAway: false,
    es: null,
    esRetry: 0,
    esTimer: null,
    listLoading: false,
    loadSeq: 0,
  };


  function getToken() {
    return staff.storedToken();
  }
  function setToken(t) {
    state.token = t;
    staff.storeToken(t);
  }

  async function api(path, { method = "GET", body, auth = true, expire = true } = {}) {
    try {
      return await request(path, { method, body, token: auth ? state.token : null });
    } catch (err) {
      if (auth && expire && err.status === 401) sessionExpired();
      throw err;
    }
  }


  function sessionExpired() {
    if (!state.token) return;
    teardown();
    setToken(null);
    renderLogin("Your session has expired. Please sign in again.");
  }

  // ---------------------------------------------------------------- login
  function renderLogin(notice) {
    document.title = `Sign in · handoff`;
    let tokenMode = false;
    const err = h("p", { class: "login-error", role: "alert", "data-testid": "login-error", hidden: !notice, text: notice || "" });
    const email = h("input", {
      id: "login-email",
      type: "email",
      name: "email",
      autocomplete: "username",
      required: true,
      "data-testid": "login-email",
    });
    const password = h("input", {
      id: "login-password",
      type: "password",
      name: "password",
      autocomplete: "current-password",
      required: true,
      "data-testid": "login-password",
    });
    const tokenInput = h("input", {
      id: "login-token",
      type: "password",
      name: "token",
      autocomplete: "off",
      spellcheck: "false",
      "data-testid": "login-token",
    });
    const credFields = h(
      "div",
      { class: "login-fields" },
      h("label", { for: "login-email", text: "Email" }),
      email,
      h("label", { for: "login-password", text: "Password" }),
      password,
    );
    const tokenFields = h(
      "div",
      { class: "login-fields", hidden: true },
      h("label", { for: "login-token", text: "API token" }),
      tokenInput,
      h("p", { class: "hint", text: "Paste a personal API token created by an admin." }),
    );
    const submit = h("button", { class: "btn btn-primary btn-block", type: "submit", "data-testid": "login-submit", text: "Sign in" });
    const switcher = h("button", { class: "link-button", type: "button", "data-testid": "login-token-toggle", text: "Use an API token instead" });
    switcher.addEventListener("click", () => {
      tokenMode = !tokenMode;
      credFields.hidden = tokenMode;
      tokenFields.hidden = !tokenMode;
      email.required = password.required = !tokenMode;
      tokenInput.required = tokenMode;
      switcher.textContent = tokenMode ? "Sign in with email and password" : "Use an API token instead";
      err.hidden = true;
      (tokenMode ? tokenInput : email).focus();
    });
    const form = h(
      "form",
      { class: "login-card", "data-testid": "login-form", "aria-labelledby": "login-title", novalidate: true },
      h("div", { class: "login-logo" }, icon("logo"), h("span", { text: "handoff" })),
      h("h1", { id: "login-title", text: "Sign in to the inbox" }),
      h("p", { class: "login-sub", text: "Pick up conversations your AI assistant handed over." }),
      err,
      credFields,
      tokenFields,
      submit,
      switcher,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.hidden = true;
      if (tokenMode) {
        const t = tokenInput.value.trim();
        if (!t) {
          err.textContent = "Paste your API token.";
          err.hidden = false;
          return;
        }
        setToken(t);
      } else {
        if (!email.value.trim() || !password.value) {
          err.textContent = "Enter your email and password.";
          err.hidden = false;
          return;
        }
        submit.disabled = true;
        submit.textContent = "Signing in…";
        try {
          const data = await api("/api/v1/auth/login", {
            method: "POST",
            auth: false,
            body: { email: email.value.trim(), password: password.value },
          });
          setToken(data.token);
          if (data.member) state.me = data.member;
        } catch (ex) {
          submit.disabled = false;
          submit.textContent = "Sign in";
          err.textContent = ex.status === 401 || ex.status === 400 ? "Wrong email or password" : ex.message;
          err.hidden = false;
          password.select();
          return;
        }
      }
      try {
        await boot({ fromLogin: true });
      } catch (ex) {
        if (ex.status === 401) setToken(null);
        submit.disabled = false;
        submit.textContent = "Sign in";
        err.textContent = ex.status === 401 ? (tokenMode ? "That token is not valid." : "Wrong email or password") : ex.message;
        err.hidden = false;
      }
    });
    app.replaceChildren(h("div", { class: "login-screen" }, form));
    email.focus();
  }

  // ---------------------------------------------------------------- the shell
  const ui = {};

  function renderShell() {
    const member = !!(state.me && state.me.id != null);
    const views = Object.entries(VIEWS).filter(([, v]) => member || !v.memberOnly);
    ui.counts = {};
    ui.tabs = h(
      "div",
      { class: "tabs", role: "tablist", "aria-label": "Ticket views" },
      views.map(([key, view]) => {
        const count = view.count ? h("span", { class: "tab-count", "data-testid": `count-${key}` }) : null;
        if (count) ui.counts[key] = count;
        const b = h(
          "button",
          {
            class: "tab",
            type: "button",
            role: "tab",
            title: view.title || view.label,
            "data-tab": key,
            "data-testid": `tab-${key}`,
            "aria-selected": String(state.tab === key),
          },
          h("span", { text: view.label }),
          count,
        );
        b.addEventListener("click", () => selectTab(key));
        return b;
      }),
    );
    renderCounts();
    ui.search = h("input", {
      class: "search-input",
      type: "search",
      placeholder: "Search people, subjects, messages",
      "aria-label": "Search tickets",
      "data-testid": "ticket-search",
    });
    let searchTimer = null;
    ui.search.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        const query = ui.search.value.trim();
        if (query === state.query) return;
        state.query = query;
        state.order = [];
        loadList();
      }, SEARCH_DELAY_MS);
    });
    ui.list = h("ul", { class: "ticket-list", "aria-label": "Tickets", "data-testid": "ticket-list" });
    ui.listEmpty = h("div", { class: "list-empty", hidden: true });
    ui.more = h("button", { class: "btn btn-ghost btn-sm btn-block load-more", type: "button", hidden: true, "data-testid": "load-more", text: "Load more" });
    ui.more.addEventListener("click", () => loadList({ more: true }));
    // Scrolling to the end of the list loads the next page by itself.
    if (typeof IntersectionObserver === "function") {
      new IntersectionObserver((seen) => {
        if (seen.some((e) => e.isIntersecting) && state.cursor && !state.listLoading) loadList({ more: true });
      }).observe(ui.more);
    }
    ui.live = h("span", { class: "live-dot", "data-state": "connecting", title: "Connecting…" });
    ui.liveText = h("span", { class: "live-text", text: "Connecting" });

    const meName = (state.me && state.me.name) || "Agent";
    const logout = h("button", { class: "btn btn-ghost btn-sm", type: "button", "data-testid": "logout", title: "Log out" }, icon("logout"), h("span", { text: "Log out" }));
    logout.addEventListener("click", logOut);
    // Admins configure integrations, the escalate action, the widget and the team there.
    const settingsLink =
      state.me && state.me.role === "admin"
        ? h("a", { class: "btn btn-ghost btn-sm", href: "/settings", style: "text-decoration: none", "data-testid": "settings-link", text: "Settings" })
        : null;
    // Away members get no new tickets from automatic assignment (the service admin has no status).
    ui.away = null;
    if (state.me && state.me.id != null) {
      ui.away = h(
        "button",
        // The switch is on, and green, while the member takes new tickets; off, amber, while away.
        { class: "away-toggle", type: "button", role: "switch", "aria-label": "Available for new tickets", "data-testid": "away-toggle" },
        h("span", { class: "away-track", "aria-hidden": "true" }, h("span", { class: "away-thumb" })),
        h("span", { class: "away-label", "aria-hidden": "true" }),
      );
      ui.away.addEventListener("click", toggleAway);
      renderAway();
    }

    const topbar = h(
      "header",
      { class: "topbar" },
      h("a", { class: "topbar-brand", href: "/inbox" }, icon("logo"), h("span", { text: "handoff" }), h("span", { class: "topbar-sep", text: "/" }), h("span", { class: "topbar-page", text: "Inbox" })),
      h("div", { class: "topbar-live", role: "status", "aria-live": "polite" }, ui.live, ui.liveText),
      h(
        "div",
        { class: "topbar-me" },
        ui.away,
        avatar(meName, "avatar-sm", state.me && state.me.avatar_url),
        h("div", { class: "me-text" }, h("span", { class: "me-name", "data-testid": "me-name", text: meName }), h("span", { class: "me-role", text: (state.me && state.me.role) || "" })),
        settingsLink,
        logout,
      ),
    );

    const sidebar = h(
      "aside",
      { class: "sidebar", "aria-label": "Ticket list" },
      h("div", { class: "sidebar-head" }, h("h1", { class: "sidebar-title", text: "Tickets" }), ui.tabs, h("label", { class: "search" }, icon("search"), ui.search)),
      h("div", { class: "sidebar-scroll" }, ui.list, ui.listEmpty, ui.more),
    );

    ui.main = h("main", { class: "conversation", "aria-label": "Ticket" });
    app.replaceChildren(h("div", { class: "shell" }, topbar, h("div", { class: "panes" }, sidebar, ui.main)));
    renderNoSelection();
  }

  function renderAway() {
    if (!ui.away) return;
    const away = !!(state.me && state.me.away);
    ui.away.setAttribute("aria-checked", String(!away));
    ui.away.classList.toggle("is-away", away);
    ui.away.querySelector(".away-label").textContent = away ? "Away" : "Available";
    ui.away.title = away ? "Away: no new tickets are assigned to you" : "Available: new tickets may be assigned to you";
    ui.away.disabled = state.savingAway;
  }

  async function toggleAway() {
    if (!state.me || state.savingAway) return;
    const away = !state.me.away;
    state.savingAway = true;
    renderAway();
    try {
      state.me = await api("/api/v1/inbox/me", { method: "PUT", body: { away } });
      toast(away ? "You're away: no new tickets will be assigned to you." : "You're available for new tickets again.", "ok");
    } catch (e) {
      if (e.status !== 401) toast(e.message);
    } finally {
      state.savingAway = false;
      renderAway();
    }
  }

  function renderNoSelection() {
    ui.main.replaceChildren(
      h(
        "div",
        { class: "placeholder" },
        icon("inbox", "placeholder-icon"),
        h("h2", { text: "No ticket selected" }),
        h("p", { text: "Pick a ticket on the left. New escalations appear there live." }),
      ),
    );
  }

  function setLive(s) {
    if (!ui.live) return;
    ui.live.dataset.state = s;
    const text = { live: "Live", connecting: "Connecting", offline: "Reconnecting…" }[s] || s;
    ui.liveText.textContent = text;
    ui.live.title = text;
  }

  // ---------------------------------------------------------------- ticket list
  // Whether a ticket the live stream changed still belongs in the current view (the server
  // decides on the next load; `waiting` here is the ticket's own flag).
  function matchesTab(t) {
    const { status, assignee } = VIEWS[state.tab].params;
    if (status === "waiting" ? t.status !== "open" || !t.waiting : t.status !== status) return false;
    if (assignee === "me") return !!(t.assignee && state.me && String(t.assignee.id) === String(state.me.id));
    if (assignee === "unassigned") return !t.assignee;
    return true;
  }

  function oldestFirst() {
    return VIEWS[state.tab].params.sort === "oldest_waiting";
  }

  function renderCounts() {
    for (const [key, el] of Object.entries(ui.counts || {})) {
      const n = state.counts ? state.counts[VIEWS[key].count] : null;
      el.textContent = n == null ? "" : String(n);
      el.hidden = n == null;
    }
  }

  // Live events change the counts: ask for them again, once per burst of events.
  let countsTimer = null;
  function refreshCounts() {
    if (countsTimer) return;
    countsTimer = setTimeout(async () => {
      countsTimer = null;
      try {
        const page = await api("/api/v1/tickets?limit=1");
        state.counts = page.counts;
        renderCounts();
      } catch {
        /* the next list load brings them */
      }
    }, 300);
  }

  function contactName(t) {
    const c = (t && t.contact) || {};
    return c.name || c.email || c.phone || c.external_id || "Visitor";
  }

  function previewText(t) {
    const m = t.last_message;
    if (!m) return t.summary || "";
    const who = m.role === "user" ? "" : m.role === "assistant" ? "AI: " : m.role === "human_agent" ? "Agent: " : "";
    return who + String(m.text || "").replace(/\s+/g, " ");
  }

  function activityAt(t) {
    return (t.last_message && t.last_message.created_at) || t.updated_at || t.created_at;
  }

  function buildRow(t) {
    const selected = String(t.id) === state.selectedId;
    const unseen = state.unseen.has(String(t.id));
    const all = t.reasons || [];
    const reasons = all.slice(0, 1).map((r) => h("span", { class: "badge badge-reason", title: REASONS[r] || r, text: reasonTitle(r) }));
    if (all.length > 1) reasons.push(h("span", { class: "badge badge-more", title: all.slice(1).map(reasonTitle).join(", "), text: `+${all.length - 1}` }));
    const a = h(
      "a",
      {
        class: `row${selected ? " selected" : ""}${unseen ? " unseen" : ""}`,
        href: `#ticket=${encodeURIComponent(t.id)}`,
        "data-testid": "ticket-row",
        "data-id": String(t.id),
        "data-conversation": t.conversation_id != null ? String(t.conversation_id) : null,
        "data-status": t.status,
        "aria-current": selected ? "true" : null,
      },
      avatar(contactName(t)),
      h(
        "div",
        { class: "row-main" },
        h(
          "div",
          { class: "row-top" },
          h("span", { class: "row-name", text: contactName(t) }),
          unseen ? h("span", { class: "unseen-dot", title: "New activity", "aria-label": "New activity" }) : null,
          timeEl(activityAt(t), "row-time"),
        ),
        h("div", { class: "row-subject", text: t.subject || `Ticket #${shortId(t.id)}` }),
        h("div", { class: "row-preview", text: previewText(t) }),
        h(
          "div",
          { class: "row-badges" },
          t.status === "solved"
            ? h("span", { class: "badge badge-solved", text: "Solved" })
            : t.waiting
              ? h("span", { class: "badge badge-waiting", "data-testid": "waiting-badge", text: "Waiting" })
              : null,
          reasons,
          h("span", { class: "row-spacer" }),
          t.assignee
            ? h("span", { class: "row-assignee", title: `Assigned to ${t.assignee.name}` }, avatar(t.assignee.name, "avatar-xs"))
            : h("span", { class: "row-unassigned", title: "Unassigned", "aria-label": "Unassigned" }),
        ),
      ),
    );
    return h("li", null, a);
  }

  function renderList() {
    if (!ui.list) return;
    const rows = [];
    for (const id of state.order) {
      const t = state.tickets.get(id);
      if (!t || !(matchesTab(t) || id === state.selectedId)) continue;
      rows.push(buildRow(t));
    }
    ui.list.replaceChildren(...rows);
    ui.listEmpty.hidden = rows.length > 0 || state.listLoading;
    ui.more.hidden = !state.cursor;
    ui.more.disabled = state.listLoading;
    if (!rows.length) {
      ui.listEmpty.replaceChildren(
        icon("inbox", "placeholder-icon"),
        h("p", {
          text: state.query
            ? "No tickets match your search."
            : state.tab === "open"
              ? "No open tickets. Nice work!"
              : "No tickets here yet.",
        }),
      );
    }
    updateTitle();
  }

  function flashRow(id) {
    const row = ui.list && ui.list.querySelector(`[data-testid="ticket-row"][data-id="${CSS.escape(String(id))}"]`);
    if (!row) return;
    row.classList.remove("flash");
    void row.offsetWidth; // restart the animation
    row.classList.add("flash");
  }

  function updateTitle() {
    const n = state.unseen.size;
    document.title = n ? `(${n}) ${BASE_TITLE}` : BASE_TITLE;
  }

  // The view's first page (replacing the list), or with `more` the next one.
  async function loadList({ more = false } = {}) {
    if (more && !state.cursor) return;
    const seq = ++state.loadSeq;
    state.listLoading = true;
    if (ui.list && !ui.list.children.length) {
      ui.list.replaceChildren(...[0, 1, 2, 3].map(() => h("li", { class: "row-skeleton", "aria-hidden": "true" })));
    }
    const params = new URLSearchParams({ ...VIEWS[state.tab].params, limit: String(PAGE_SIZE) });
    if (state.query) params.set("q", state.query);
    if (more) params.set("cursor", state.cursor);
    try {
      const page = await api(`/api/v1/tickets?${params}`);
      if (seq !== state.loadSeq) return;
      if (!more) state.order = [];
      for (const t of page.tickets) {
        const k = String(t.id);
        state.tickets.set(k, { ...(state.tickets.get(k) || {}), ...t });
        if (!state.order.includes(k)) state.order.push(k);
      }
      state.cursor = page.next_cursor;
      state.counts = page.counts;
      renderCounts();
      if (state.selectedId != null && !state.order.includes(state.selectedId) && state.tickets.has(state.selectedId)) {
        state.order.unshift(state.selectedId);
      }
    } catch (e) {
      if (e.status !== 401) toast(e.message);
    } finally {
      if (seq === state.loadSeq) {
        state.listLoading = false;
        renderList();
      }
    }
  }

  function selectTab(key) {
    if (state.tab === key) return;
    state.tab = key;
    for (const b of ui.tabs.querySelectorAll(".tab")) b.setAttribute("aria-selected", String(b.dataset.tab === key));
    state.order = [];
    state.cursor = null;
    renderList();
    loadList();
  }

  // A ticket came from the API or the stream. A newcomer joins the list where the view's
  // order puts it: at the top when newest first, at the end (once every page is there) when
  // oldest first, and not at all while a search is on (the server decides what matches).
  function upsertTicket(t, { toTop = true } = {}) {
    if (!t || t.id == null) return;
    const k = String(t.id);
    const merged = { ...(state.tickets.get(k) || {}), ...t };
    state.tickets.set(k, merged);
    const i = state.order.indexOf(k);
    if (i < 0) {
      if (state.query && k !== state.selectedId) return merged;
      if (!oldestFirst()) state.order.unshift(k);
      else if (!state.cursor || k === state.selectedId) state.order.push(k);
    } else if (toTop && !oldestFirst()) {
      state.order.splice(i, 1);
      state.order.unshift(k);
    }
    return merged;
  }

  // ---------------------------------------------------------------- ticket view
  // Routes: #ticket=ID (also #/tickets/ID) and #conversation=ID, the links the service
  // puts in notifications (see Handoff.ticket_url / conversation_url).
  function parseHash() {
    const hash = location.hash.replace(/^#\/?/, "");
    let m = /^tickets?[=/]([^&/?#]+)/.exec(hash);
    if (m) return { ticket: decodeURIComponent(m[1]) };
    m = /^conversation[=/]([^&/?#]+)/.exec(hash);
    if (m) return { conversation: decodeURIComponent(m[1]) };
    return {};
  }

  async function selectFromHash() {
    const route = parseHash();
    if (route.conversation) {
      const id = await ticketForConversation(route.conversation);
      if (id != null) {
        history.replaceState(null, "", `#ticket=${encodeURIComponent(id)}`);
        route.ticket = String(id);
      } else {
        toast("No ticket for that conversation yet.");
      }
    }
    const id = route.ticket ?? null;
    if (id === state.selectedId && state.detail) return;
    if (id == null) {
      state.selectedId = null;
      state.detail = null;
      if (ui.main) renderNoSelection();
      renderList();
      return;
    }
    openTicket(id);
  }

  async function ticketForConversation(conversationId) {
    const pick = (items) => {
      const mine = items.filter((t) => String(t.conversation_id) === String(conversationId));
      mine.sort((a, b) => (a.status === "open" ? 0 : 1) - (b.status === "open" ? 0 : 1) || String(b.updated_at).localeCompare(String(a.updated_at)));
      return mine.length ? mine[0].id : null;
    };
    const known = pick([...state.tickets.values()]);
    if (known != null) return known;
    try {
      const page = await api(`/api/v1/tickets?status=all&conversation_id=${encodeURIComponent(conversationId)}`);
      return pick(page.tickets);
    } catch {
      return null;
    }
  }

  async function openTicket(id) {
    state.selectedId = id;
    state.detail = null;
    state.unseen.delete(id);
    renderList();
    ui.main.replaceChildren(h("div", { class: "placeholder", "aria-busy": "true" }, h("div", { class: "spinner", "aria-label": "Loading ticket" })));
    try {
      const t = await api(`/api/v1/tickets/${encodeURIComponent(id)}`);
      if (state.selectedId !== id) return;
      state.detail = t;
      upsertTicket(stripDetail(t), { toTop: false });
      renderTicket();
      renderList();
    } catch (e) {
      if (state.selectedId !== id) return;
      if (e.status === 401) return;
      ui.main.replaceChildren(
        h("div", { class: "placeholder" }, h("h2", { text: e.status === 404 ? "Ticket not found" : "Couldn't load this ticket" }), h("p", { text: e.message })),
      );
    }
  }

  function stripDetail(t) {
    const { messages, notes, evidence, ...rest } = t;
    return rest;
  }

  function renderTicket() {
    const t = state.detail;
    if (!t) return;
    state.seenItems = new Set();
    ui.transcript = h("div", {
      class: "transcript",
      role: "log",
      "aria-live": "polite",
      "aria-label": "Conversation transcript",
      "data-testid": "transcript",
      tabindex: "0",
    });
    const items = [
      ...(t.messages || []).map((m) => ({ kind: "m", at: m.created_at, seq: 0, data: m })),
      ...(t.notes || []).map((n) => ({ kind: "n", at: n.created_at, seq: 1, data: n })),
    ].sort((a, b) => (parseDate(a.at) || 0) - (parseDate(b.at) || 0) || a.seq - b.seq || (a.data.id || 0) - (b.data.id || 0));
    for (const it of items) appendItem(it.kind, it.data, { scroll: false });
    if (!items.length) ui.transcript.append(h("p", { class: "transcript-empty", text: "No messages yet." }));

    ui.header = h("div", { class: "ticket-header" });
    ui.side = h("aside", { class: "details", "aria-label": "Ticket details", "data-testid": "ticket-details" });
    ui.composer = buildComposer();
    const view = h(
      "section",
      { class: "ticket-view", "data-testid": "ticket-view", "data-id": String(t.id) },
      h("div", { class: "ticket-center" }, ui.header, ui.transcript, ui.composer.el),
      ui.side,
    );
    ui.main.replaceChildren(view);
    renderTicketMeta();
    scrollTranscript(true);
  }

  // Header + side panel; cheap to re-render on every ticket update.
  function renderTicketMeta() {
    const t = state.detail;
    if (!t) return;
    const solved = t.status === "solved";

    // header
    const assign = h("select", { class: "select", id: "assign-select", "data-testid": "assign-select", "aria-label": "Assignee" });
    assign.append(h("option", { value: "", text: "Unassigned" }));
    const members = state.members.length ? state.members : state.me ? [state.me] : [];
    let hasCurrent = false;
    for (const m of members) {
      let label = state.me && m.id === state.me.id ? `${m.name} (you)` : m.name || m.email;
      if (m.away) label += " · away";
      const opt = h("option", { value: String(m.id), text: label });
      if (t.assignee && String(t.assignee.id) === String(m.id)) {
        opt.selected = true;
        hasCurrent = true;
      }
      assign.append(opt);
    }
    if (t.assignee && !hasCurrent) {
      assign.append(h("option", { value: String(t.assignee.id), text: t.assignee.name, selected: true }));
    }
    assign.addEventListener("change", () => assignTo(assign.value));

    const solve = h(
      "button",
      {
        class: `btn ${solved ? "btn-solved" : "btn-success"}`,
        type: "button",
        "data-testid": "solve-button",
        disabled: solved,
        title: solved ? "This ticket is solved" : "Solve the ticket and hand the conversation back to the AI",
      },
      icon("check"),
      h("span", { text: solved ? "Solved" : "Solve" }),
    );
    solve.addEventListener("click", () => solveTicket(solve));

    ui.header.replaceChildren(
      h(
        "div",
        { class: "ticket-title" },
        h("h2", { "data-testid": "ticket-subject", text: t.subject || `Ticket #${shortId(t.id)}` }),
        h(
          "div",
          { class: "ticket-sub" },
          h("span", { class: `badge badge-status badge-${solved ? "solved" : "open"}`, "data-testid": "ticket-status", text: solved ? "Solved" : "Open" }),
          !solved && t.waiting ? h("span", { class: "badge badge-waiting", text: "Waiting for reply" }) : null,
          h("span", { class: "muted ticket-id", title: `Ticket ${t.id}`, text: `#${shortId(t.id)}` }),
          h("span", { class: "muted", text: "·" }),
          h("span", { class: "muted", text: contactName(t) }),
          h("span", { class: "muted", text: "·" }),
          h("span", { class: "muted", text: CHANNELS[t.channel] || t.channel || "" }),
        ),
      ),
      h("div", { class: "ticket-actions" }, h("label", { class: "sr-only", for: "assign-select", text: "Assignee" }), assign, solve),
    );

    // side panel
    const c = t.contact || {};
    const contactRows = [
      ["Email", c.email ? h("a", { href: `mailto:${c.email}`, "data-testid": "contact-email" }, breakableEmail(c.email)) : null],
      ["Phone", c.phone ? h("a", { href: `tel:${c.phone}`, text: c.phone }) : null],
      ["User ID", c.external_id || null],
    ].filter(([, v]) => v);
    const detailRows = [
      ["Status", solved ? "Solved" : "Open"],
      ["Channel", CHANNELS[t.channel] || t.channel],
      ["Assignee", t.assignee ? t.assignee.name : "Unassigned"],
      ["Created", t.created_at ? timeEl(t.created_at) : null],
      ["Updated", t.updated_at ? timeEl(t.updated_at) : null],
      ["Conversation", t.conversation_id != null ? h("span", { title: String(t.conversation_id), text: `#${shortId(t.conversation_id)}` }) : null],
    ].filter(([, v]) => v !== null && v !== undefined && v !== "");

    const dl = (rows) => h("dl", { class: "kv" }, rows.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", null, v)]));

    const reasons = (t.reasons || []).map((r) => h("span", { class: "badge badge-reason", "data-testid": "reason-badge", title: REASONS[r] || r, text: reasonTitle(r) }));
    const evidence = (t.evidence || []).map((ev) => {
      const score = typeof ev.score === "number" ? Math.max(0, Math.min(1, ev.score)) : null;
      const bar = h("span", { class: "score-bar", "aria-hidden": "true" }, h("span", { class: "score-fill" }));
      if (score !== null) bar.firstChild.style.width = `${Math.round(score * 100)}%`;
      // Signals that did not fire are kept as near misses: context, not a reason.
      const fired = (t.reasons || []).includes(ev.reason);
      return h(
        "li",
        { class: fired ? "evidence-item" : "evidence-item near-miss", "data-testid": "evidence-item", "data-fired": String(fired) },
        h(
          "div",
          { class: "evidence-top" },
          h("span", { class: "evidence-reason", text: (ev.reason ? reasonTitle(ev.reason) : "signal") + (fired ? "" : " · near miss") }),
          h("span", { class: "evidence-score", text: score === null ? "—" : score.toFixed(2) }),
        ),
        bar,
        ev.detail ? h("p", { class: "evidence-detail", text: typeof ev.detail === "string" ? ev.detail : JSON.stringify(ev.detail) }) : null,
      );
    });

    ui.side.replaceChildren(
      h(
        "section",
        { class: "card contact-card" },
        h("div", { class: "contact-head" }, avatar(contactName(t), "avatar-lg"), h("div", null, h("h3", { "data-testid": "contact-name" }, !c.name && c.email ? breakableEmail(c.email) : contactName(t)), h("p", { class: "muted" }, c.email && c.name ? breakableEmail(c.email) : (CHANNELS[t.channel] || "")))),
        contactRows.length ? dl(contactRows) : h("p", { class: "muted small", text: "Anonymous visitor — no contact details." }),
      ),
      h(
        "section",
        { class: "card" },
        h("h3", { class: "card-title", text: "Why it was escalated" }),
        reasons.length ? h("div", { class: "badges", "data-testid": "ticket-reasons" }, reasons) : h("p", { class: "muted small", text: "No reasons recorded." }),
        evidence.length ? h("ul", { class: "evidence", "aria-label": "Signals" }, evidence) : null,
      ),
      h(
        "section",
        { class: "card" },
        h("h3", { class: "card-title", text: "Summary" }),
        h("p", { class: "summary", "data-testid": "ticket-summary", text: t.summary || "No summary." }),
      ),
      h("section", { class: "card" }, h("h3", { class: "card-title", text: "Details" }), dl(detailRows)),
    );

    if (ui.composer) ui.composer.update();
  }

  function transcriptMessage(m) {
    const role = typeof m.role === "string" ? m.role : "system";
    const t = state.detail || {};
    let who;
    if (role === "user") who = contactName(t);
    else if (role === "human_agent") who = (m.author && m.author.name) || "Agent";
    else who = ROLE_LABEL[role] || role;
    const d = parseDate(m.created_at);
    const metaChildren = [
      role === "assistant" ? icon("bot", "icon role-icon") : null,
      h("span", { class: "who", text: who }),
      role === "human_agent" ? h("span", { class: "role-tag", text: "Agent" }) : null,
      role === "assistant" ? h("span", { class: "role-tag", text: "AI" }) : null,
      d ? h("time", { datetime: d.toISOString(), title: fullFmt.format(d), text: timeFmt.format(d) }) : null,
    ];
    return h(
      "div",
      { class: `tmsg tmsg-${role}`, "data-testid": "transcript-message", "data-role": role, "data-id": m.id != null ? String(m.id) : null },
      role === "system" ? null : role === "user" ? avatar(who) : role === "human_agent" ? avatar(who, "avatar-agent", m.author && m.author.avatar_url) : h("span", { class: "avatar avatar-bot", "aria-hidden": "true" }, icon("bot")),
      h("div", { class: "tmsg-body" }, role === "system" ? null : h("div", { class: "tmsg-meta" }, metaChildren), h("div", { class: "tmsg-bubble" }, richText(m.text)), role === "system" && d ? h("time", { class: "tmsg-systime", datetime: d.toISOString(), text: timeFmt.format(d) }) : null),
    );
  }

  function transcriptNote(n) {
    const d = parseDate(n.created_at);
    const who = (n.author && n.author.name) || "Teammate";
    return h(
      "div",
      { class: "tnote", "data-testid": "transcript-note", "data-id": n.id != null ? String(n.id) : null },
      h(
        "div",
        { class: "tnote-meta" },
        icon("lock"),
        h("span", { class: "who", text: who }),
        h("span", { text: "added an internal note · only your team sees this" }),
        d ? h("time", { datetime: d.toISOString(), title: fullFmt.format(d), text: timeFmt.format(d) }) : null,
      ),
      h("div", { class: "tnote-text" }, richText(n.text)),
    );
  }

  function appendItem(kind, data, { scroll = true } = {}) {
    if (!ui.transcript || !data) return false;
    const key = `${kind}:${data.id}`;
    if (data.id != null && state.seenItems.has(key)) return false;
    if (data.id != null) state.seenItems.add(key);
    const stick = !scroll || nearBottom();
    const empty = ui.transcript.querySelector(".transcript-empty");
    if (empty) empty.remove();
    ui.transcript.append(kind === "n" ? transcriptNote(data) : transcriptMessage(data));
    if (scroll) scrollTranscript(stick || (kind === "m" && data.role === "human_agent") || kind === "n");
    return true;
  }

  function nearBottom() {
    const el = ui.transcript;
    return !el || el.scrollHeight - el.scrollTop - el.clientHeight < 120;
  }

  function scrollTranscript(force) {
    if (!ui.transcript || !force) return;
    ui.transcript.scrollTop = ui.transcript.scrollHeight;
  }

  // ---------------------------------------------------------------- composer
  function buildComposer() {
    const input = h("textarea", {
      class: "reply-input",
      id: "reply-input",
      rows: "3",
      "data-testid": "reply-input",
      "aria-label": "Reply to the visitor",
    });
    const replyTab = h("button", { class: "ctab", type: "button", role: "tab", "data-testid": "reply-tab", text: "Reply" });
    const noteTab = h("button", { class: "ctab ctab-note", type: "button", role: "tab", "data-testid": "note-toggle" }, icon("lock"), h("span", { text: "Internal note" }));
    const send = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "reply-send" }, icon("send"), h("span", { class: "send-label", text: "Send reply" }));
    const hint = h("span", { class: "composer-hint" }, h("kbd", { text: "Enter" }), " to send · ", h("kbd", { text: "Shift" }), "+", h("kbd", { text: "Enter" }), " for a new line");
    const notice = h("p", { class: "composer-notice", "data-testid": "composer-notice", hidden: true });
    const el = h(
      "form",
      { class: "composer", "aria-label": "Reply" },
      h("div", { class: "ctabs", role: "tablist", "aria-label": "Reply or note" }, replyTab, noteTab),
      notice,
      input,
      h("div", { class: "composer-foot" }, hint, send),
    );

    function update() {
      const t = state.detail || {};
      const solved = t.status === "solved";
      const note = state.mode === "note";
      el.classList.toggle("is-note", note);
      replyTab.setAttribute("aria-selected", String(!note));
      noteTab.setAttribute("aria-selected", String(note));
      noteTab.setAttribute("aria-pressed", String(note));
      const replyBlocked = solved && !note;
      input.disabled = replyBlocked;
      input.placeholder = note
        ? "Add an internal note — only your team sees this"
        : replyBlocked
          ? "This ticket is solved."
          : `Reply to ${contactName(t)}… they see it live in the chat`;
      input.setAttribute("aria-label", note ? "Internal note" : "Reply to the visitor");
      send.querySelector(".send-label").textContent = note ? "Add note" : "Send reply";
      send.disabled = state.sending || replyBlocked || !input.value.trim();
      notice.hidden = !replyBlocked;
      notice.textContent = replyBlocked ? "This ticket is solved — the AI assistant is handling the conversation again. You can still add internal notes." : "";
    }

    function setMode(mode) {
      state.mode = mode;
      update();
      if (!input.disabled) input.focus();
    }
    replyTab.addEventListener("click", () => setMode("reply"));
    noteTab.addEventListener("click", () => setMode(state.mode === "note" ? "reply" : "note"));
    input.addEventListener("input", () => {
      update();
      pingTyping();
    });

    // Let the visitor see that someone is writing to them: one ping every ~3 s while typing
    // a reply (never for an internal note). A short delay drops the ping of a reply that is
    // pasted and sent at once, which would otherwise announce typing after the message.
    let pingTimer = null;
    function pingTyping() {
      if (pingTimer || Date.now() - state.lastTypingPing < 3000) return;
      pingTimer = setTimeout(() => {
        pingTimer = null;
        const t = state.detail;
        if (!t || t.status !== "open" || state.mode !== "reply" || !input.value.trim() || state.sending) return;
        state.lastTypingPing = Date.now();
        api(`/api/v1/tickets/${encodeURIComponent(t.id)}/typing`, { method: "POST" }).catch(() => {});
      }, 300);
    }
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        submit();
      }
    });
    el.addEventListener("submit", (e) => {
      e.preventDefault();
      submit();
    });

    async function submit() {
      const t = state.detail;
      const text = input.value.trim();
      if (!t || !text || state.sending) return;
      const note = state.mode === "note";
      if (!note && t.status === "solved") return;
      state.sending = true;
      clearTimeout(pingTimer);
      pingTimer = null;
      update();
      const id = String(t.id);
      try {
        const data = await api(`/api/v1/tickets/${encodeURIComponent(id)}/${note ? "notes" : "replies"}`, { method: "POST", body: { text } });
        if (isOpen(id)) {
          const item = data && data.note ? data.note : data && data.message ? data.message : data;
          appendItem(note ? "n" : "m", item);
          if (!note) {
            const cur = state.tickets.get(id);
            if (cur) upsertTicket({ ...cur, waiting: false, last_message: { role: "human_agent", text, created_at: item && item.created_at } });
            renderList();
          }
        }
        input.value = "";
        if (!note) state.lastTypingPing = 0; // the next reply announces itself at once
      } catch (e) {
        if (e.status !== 401) toast(e.message);
      } finally {
        state.sending = false;
        update();
        input.focus();
      }
    }

    update();
    return { el, update, input };
  }

  async function assignTo(value) {
    const t = state.detail;
    if (!t) return;
    const memberId = value === "" ? null : state.members.some((m) => typeof m.id === "number") ? Number(value) : value;
    try {
      const updated = await api(`/api/v1/tickets/${encodeURIComponent(t.id)}/assign`, { method: "POST", body: { member_id: memberId } });
      applyTicketUpdate(updated || { ...t, assignee: memberId == null ? null : { id: memberId } });
      toast(memberId == null ? "Ticket unassigned" : `Assigned to ${(state.detail.assignee && state.detail.assignee.name) || "teammate"}`, "ok");
    } catch (e) {
      if (e.status !== 401) toast(e.message);
      renderTicketMeta(); // put the select back
    }
  }

  async function solveTicket(btn) {
    const t = state.detail;
    if (!t || t.status === "solved") return;
    btn.disabled = true;
    try {
      const updated = await api(`/api/v1/tickets/${encodeURIComponent(t.id)}/solve`, { method: "POST" });
      applyTicketUpdate(updated || { ...t, status: "solved" });
      state.mode = "reply";
      renderTicketMeta();
      toast("Solved — the AI assistant takes over the conversation again.", "ok");
    } catch (e) {
      btn.disabled = false;
      if (e.status !== 401) toast(e.message);
    }
  }

  // A ticket (list item or detail) came back from the API or the event stream.
  function applyTicketUpdate(t, { live = false } = {}) {
    if (!t || t.id == null) return;
    upsertTicket(stripDetail(t), { toTop: live });
    refreshCounts(); // an assignment, an answer or a solve moves tickets between views
    if (isOpen(t.id)) {
      const { messages, notes, ...rest } = t;
      state.detail = { ...state.detail, ...rest };
      if (Array.isArray(messages)) for (const m of messages) appendItem("m", m);
      if (Array.isArray(notes)) for (const n of notes) appendItem("n", n);
      renderTicketMeta();
    }
    renderList();
  }

  // ---------------------------------------------------------------- live events
  function isOpen(id) {
    return !!state.detail && String(state.detail.id) === String(id);
  }

  function isLooking(id) {
    return state.selectedId === String(id) && !document.hidden;
  }

  function connectEvents() {
    disconnectEvents();
    if (!state.token || typeof EventSource !== "function") return;
    setLive("connecting");
    const es = new EventSource(`/api/v1/inbox/events?access_token=${encodeURIComponent(state.token)}`);
    state.es = es;
    es.addEventListener("open", () => {
      state.esRetry = 0;
      setLive("live");
    });
    const parse = (ev) => {
      try {
        return JSON.parse(ev.data);
      } catch {
        return null;
      }
    };
    es.addEventListener("ticket", (ev) => {
      const t = parse(ev);
      if (!t || t.id == null) return;
      const k = String(t.id);
      const known = state.tickets.has(k);
      applyTicketUpdate(t, { live: true });
      if (!isLooking(k) && matchesTab(state.tickets.get(k))) state.unseen.add(k);
      renderList();
      flashRow(k);
      if (!known && !isLooking(t.id) && matchesTab(t)) toast(`New ticket from ${contactName(t)}`, "info");
    });
    es.addEventListener("message", (ev) => {
      const d = parse(ev);
      if (!d || d.ticket_id == null || !d.message) return;
      const id = String(d.ticket_id);
      if (isOpen(id)) appendItem("m", d.message);
      const cur = state.tickets.get(id);
      if (cur) {
        upsertTicket({ ...cur, last_message: { role: d.message.role, text: d.message.text, created_at: d.message.created_at }, waiting: d.message.role === "user" ? true : cur.waiting }, { toTop: true });
      }
      if (!isLooking(id)) state.unseen.add(id);
      renderList();
      flashRow(id);
    });
    es.addEventListener("note", (ev) => {
      const d = parse(ev);
      if (!d || d.ticket_id == null || !d.note) return;
      if (isOpen(d.ticket_id)) appendItem("n", d.note);
    });
    es.addEventListener("error", () => {
      if (state.es !== es) return;
      if (es.readyState === EventSource.CONNECTING) {
        setLive("offline"); // the browser retries with Last-Event-ID by itself
        return;
      }
      // Refused (e.g. 401) or closed: check the session, catch up, reconnect with backoff.
      state.es = null;
      setLive("offline");
      const delay = Math.min(30000, 1000 * 2 ** state.esRetry) + Math.random() * 500;
      state.esRetry += 1;
      state.esTimer = setTimeout(async () => {
        try {
          await api("/api/v1/me");
        } catch (e) {
          if (e.status === 401) return; // back on the login screen already
        }
        if (!state.token) return;
        connectEvents();
        loadList();
        if (state.selectedId != null) reloadDetail();
      }, delay);
    });
  }

  async function reloadDetail() {
    const id = state.selectedId;
    try {
      const t = await api(`/api/v1/tickets/${encodeURIComponent(id)}`);
      if (state.selectedId !== id || !state.detail) return;
      applyTicketUpdate(t);
    } catch {
      /* keep what we have */
    }
  }

  function disconnectEvents() {
    clearTimeout(state.esTimer);
    if (state.es) {
      state.es.close();
      state.es = null;
    }
  }

  // ---------------------------------------------------------------- session
  function teardown() {
    disconnectEvents();
    state.tickets.clear();
    state.order = [];
    state.cursor = null;
    state.counts = null;
    state.query = "";
    state.unseen.clear();
    state.selectedId = null;
    state.detail = null;
    state.members = [];
    ui.list = null;
    updateTitle();
  }

  async function logOut() {
    const token = state.token;
    teardown();
    setToken(null);
    // Best effort: revoke the session server-side if the API supports it.
    fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
    history.replaceState(null, "", location.pathname);
    renderLogin();
  }

  // Loads the signed-in shell. Throws ApiError when the token is refused or the server is
  // unreachable; renders the login form itself unless called from it (fromLogin).
  async function boot({ fromLogin = false } = {}) {
    state.token = getToken() || state.token;
    if (!state.token) {
      renderLogin();
      return;
    }
    try {
      state.me = await api("/api/v1/me", { expire: false });
    } catch (e) {
      if (e.status === 401) setToken(null);
      if (!fromLogin) renderLogin(e.status === 401 ? null : e.message);
      throw e;
    }
    const words = await api("/api/v1/vocabulary", { auth: false }).catch(() => null);
    if (words) ({ channels: CHANNELS, reasons: REASONS, reason_titles: REASON_TITLES } = words);
    renderShell();
    connectEvents();
    const membersP = api("/api/v1/members")
      .then((m) => {
        state.members = Array.isArray(m) ? m : [];
      })
      .catch(() => {
        state.members = [];
      });
    await Promise.all([loadList(), membersP]);
    selectFromHash();
  }

  window.addEventListener("hashchange", () => {
    if (ui.main && state.token) selectFromHash();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.selectedId != null && state.unseen.delete(state.selectedId)) renderList();
  });

  // j / k move through tickets when not typing.
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.metaKey || e.ctrlKey || e.altKey) return;
    const tag = (e.target && e.target.tagName) || "";
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(tag) || (e.target && e.target.isContentEditable)) return;
    if (e.key !== "j" && e.key !== "k") return;
    if (!ui.list) return;
    const rows = [...ui.list.querySelectorAll('[data-testid="ticket-row"]')];
    if (!rows.length) return;
    const i = rows.findIndex((r) => r.classList.contains("selected"));
    const next = rows[Math.max(0, Math.min(rows.length - 1, i < 0 ? 0 : i + (e.key === "j" ? 1 : -1)))];
    next.focus();
    location.hash = next.getAttribute("href");
  });

  // Keep relative times fresh.
  setInterval(() => {
    for (const el of document.querySelectorAll("time.reltime[data-rel]")) el.textContent = relTime(el.dataset.rel);
  }, 30000);

  boot().catch(() => {});
})();
