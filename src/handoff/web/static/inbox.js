/*!
 * handoff inbox — the support team's single-page app over the tickets API. An ES module:
 * the list's logic is in inbox/tickets.js, the reply box's in inbox/composer.js and the
 * live stream's in inbox/events.js (pure, unit-tested); the top bar, the list's rows and the ticket's header and details are Preact
 * components (inbox/components.js); the rest builds the DOM with staff.js's `h`.
 *
 * Security: ticket, transcript, note and member data are inserted with textContent, as
 * attribute values or as Preact text (escaped); the only markup is staff.js's constant icons.
 */
import {
  avatar,
  fullFormat,
  h,
  icon,
  loginCard,
  parseDate,
  request,
  richText,
  signInWithPassword,
  storedToken,
  storeToken,
  timeFormat,
  toast,
} from "./staff.js";
import {
  VIEWS,
  addPage,
  contactName,
  emptyListText,
  listQuery,
  memberIdOf,
  newList,
  parseRoute,
  placeTicket,
  stripDetail,
  ticketHash,
  ticketOfConversation,
  transcriptItems,
  viewsFor,
  visibleTickets,
  withMessage,
} from "./inbox/tickets.js";
import { alertsView, changeAlerts, raiseAlert } from "./inbox/alerts.js";
import { insertCanned, matchCanned, slashQuery } from "./inbox/canned.js";
import { CannedPicker, Details, ShortcutsList, TicketHeader, TicketRows, Topbar } from "./inbox/components.js";
import { TYPING_PING_MS, composerView, mayPingTyping } from "./inbox/composer.js";
import { readEvent, reconnectDelay, ticketNews } from "./inbox/events.js";
import { messageAlert, ticketAlert } from "./inbox/notify.js";
import { SHORTCUTS, shortcutFor } from "./inbox/shortcuts.js";
import { html, render } from "./vendor/htm-preact.js";

const app = document.getElementById("inbox-app");
const BASE_TITLE = "Inbox · handoff";

// What reasons and channels are called: GET /api/v1/vocabulary, read at boot.
let words = { channels: {}, reasons: {}, reason_titles: {} };
const ROLE_LABEL = { user: "Visitor", assistant: "AI assistant", human_agent: "Agent", system: "System" };
const SEARCH_DELAY_MS = 300;

// The ticket list: its view, search, pages and the open ticket (see inbox/tickets.js).
const list = newList();

const state = {
  token: null,
  me: null,
  members: [],
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
  solving: false,
  live: "connecting", // the event stream: connecting, live or offline
  drawer: false, // the details drawer is open (narrow screens)
};

function setToken(t) {
  state.token = t;
  storeToken(t);
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
  const form = loginCard(
    "Sign in to the inbox",
    "Pick up conversations your AI assistant handed over.",
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
      const data = await signInWithPassword({ email, password, submit, err });
      if (!data) return;
      setToken(data.token);
      if (data.member) state.me = data.member;
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
  const views = viewsFor(state.me);
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
          "aria-selected": String(list.tab === key),
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
      if (query === list.query) return;
      list.query = query;
      list.order = [];
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
      if (seen.some((e) => e.isIntersecting) && list.cursor && !state.listLoading) loadList({ more: true });
    }).observe(ui.more);
  }
  const topbar = h("div", { class: "topbar-slot" });
  const sidebar = h(
    "aside",
    { class: "sidebar", "aria-label": "Ticket list" },
    h("div", { class: "sidebar-head" }, h("h1", { class: "sidebar-title", text: "Tickets" }), ui.tabs, h("label", { class: "search" }, icon("search"), ui.search)),
    h("div", { class: "sidebar-scroll" }, ui.list, ui.listEmpty, ui.more),
  );

  ui.main = h("main", { class: "conversation", "aria-label": "Ticket" });
  ui.shell = h("div", { class: "shell", "data-pane": "list" }, topbar, h("div", { class: "panes" }, sidebar, ui.main));
  ui.topbar = topbar;
  app.replaceChildren(ui.shell);
  renderTopbar();
  renderNoSelection();
}

// Below 700 px the page shows the list or the open ticket, never both.
function renderPane() {
  if (ui.shell) ui.shell.dataset.pane = list.selectedId != null ? "ticket" : "list";
}

// What the main pane shows, in place of the ticket (and its components) shown before.
function showInMain(...nodes) {
  unmountTicket();
  ui.main.replaceChildren(...nodes);
  renderPane();
}

function unmountTicket() {
  if (ui.header) render(null, ui.header);
  if (ui.side) render(null, ui.side);
  ui.header = ui.side = null;
}

// Back to the list (phones): the ticket closes; its row keeps the focus.
function backToList() {
  const id = list.selectedId;
  history.replaceState(null, "", location.pathname + location.search);
  selectFromHash();
  const row = id != null && ui.list && ui.list.querySelector(`[data-testid="ticket-row"][data-id="${CSS.escape(id)}"]`);
  if (row) row.focus();
}

function backButton() {
  return h("button", { class: "btn btn-ghost btn-sm back-button", type: "button", "data-testid": "back-to-list", onclick: backToList, text: "← Tickets" });
}

function renderTopbar() {
  if (!ui.topbar) return;
  render(
    html`<${Topbar}
      me=${state.me}
      live=${state.live}
      savingAway=${state.savingAway}
      alerts=${alertsView()}
      onAlerts=${switchAlerts}
      onShortcuts=${showShortcuts}
      onToggleAway=${toggleAway}
      onLogOut=${logOut}
    />`,
    ui.topbar,
  );
}

async function switchAlerts(change) {
  const shown = await changeAlerts(change);
  renderTopbar();
  if (change.notify && shown.notify === "blocked") toast("The browser blocks notifications for this site: allow them in its site settings.");
}

async function toggleAway() {
  if (!state.me || state.savingAway) return;
  const away = !state.me.away;
  state.savingAway = true;
  renderTopbar();
  try {
    state.me = await api("/api/v1/inbox/me", { method: "PUT", body: { away } });
    toast(away ? "You're away: no new tickets will be assigned to you." : "You're available for new tickets again.", "ok");
  } catch (e) {
    if (e.status !== 401) toast(e.message);
  } finally {
    state.savingAway = false;
    renderTopbar();
  }
}

function renderNoSelection() {
  showInMain(
    h(
      "div",
      { class: "placeholder" },
      icon("inbox", "placeholder-icon"),
      h("h2", { text: "No ticket selected" }),
      h("p", { text: "Pick a ticket on the left. New escalations appear there live." }),
    ),
  );
}

function setLive(live) {
  state.live = live;
  renderTopbar();
}

// ---------------------------------------------------------------- ticket list
function renderCounts() {
  for (const [key, el] of Object.entries(ui.counts || {})) {
    const n = list.counts ? list.counts[VIEWS[key].count] : null;
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
      list.counts = page.counts;
      renderCounts();
    } catch {
      /* the next list load brings them */
    }
  }, 300);
}

function renderList() {
  if (!ui.list) return;
  const rows = visibleTickets(list, state.me);
  render(
    html`<${TicketRows} tickets=${rows} selectedId=${list.selectedId} unseen=${state.unseen} loading=${state.listLoading} words=${words} />`,
    ui.list,
  );
  ui.listEmpty.hidden = rows.length > 0 || state.listLoading;
  ui.more.hidden = !list.cursor;
  ui.more.disabled = state.listLoading;
  if (!rows.length) {
    ui.listEmpty.replaceChildren(
      icon("inbox", "placeholder-icon"),
      h("p", { text: emptyListText(list.tab, list.query) }),
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
  if (more && !list.cursor) return;
  const seq = ++state.loadSeq;
  state.listLoading = true;
  renderList();
  const query = listQuery(list.tab, { query: list.query, cursor: more ? list.cursor : null });
  try {
    const page = await api(`/api/v1/tickets?${query}`);
    if (seq !== state.loadSeq) return;
    addPage(list, page, { more });
    renderCounts();
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
  if (list.tab === key) return;
  list.tab = key;
  for (const b of ui.tabs.querySelectorAll(".tab")) b.setAttribute("aria-selected", String(b.dataset.tab === key));
  list.order = [];
  list.cursor = null;
  renderList();
  loadList();
}

// ---------------------------------------------------------------- ticket view
async function selectFromHash() {
  const route = parseRoute(location.hash);
  if (route.conversation) {
    const id = await ticketForConversation(route.conversation);
    if (id != null) {
      history.replaceState(null, "", ticketHash(id));
      route.ticket = String(id);
    } else {
      toast("No ticket for that conversation yet.");
    }
  }
  const id = route.ticket ?? null;
  if (id === list.selectedId && state.detail) return;
  if (id == null) {
    list.selectedId = null;
    state.detail = null;
    if (ui.main) renderNoSelection();
    renderList();
    return;
  }
  openTicket(id);
}

async function ticketForConversation(conversationId) {
  const known = ticketOfConversation([...list.tickets.values()], conversationId);
  if (known != null) return known;
  try {
    const page = await api(`/api/v1/tickets?status=all&conversation_id=${encodeURIComponent(conversationId)}`);
    return ticketOfConversation(page.tickets, conversationId);
  } catch {
    return null;
  }
}

async function openTicket(id) {
  list.selectedId = id;
  state.detail = null;
  state.unseen.delete(id);
  state.drawer = false;
  renderList();
  showInMain(h("div", { class: "placeholder", "aria-busy": "true" }, h("div", { class: "spinner", "aria-label": "Loading ticket" })));
  try {
    const t = await api(`/api/v1/tickets/${encodeURIComponent(id)}`);
    if (list.selectedId !== id) return;
    state.detail = t;
    placeTicket(list, stripDetail(t), { toTop: false });
    renderTicket();
    renderList();
  } catch (e) {
    if (list.selectedId !== id) return;
    if (e.status === 401) return;
    showInMain(
      h("div", { class: "placeholder" }, backButton(), h("h2", { text: e.status === 404 ? "Ticket not found" : "Couldn't load this ticket" }), h("p", { text: e.message })),
    );
  }
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
  const items = transcriptItems(t);
  for (const it of items) appendItem(it.kind, it.data, { scroll: false });
  if (!items.length) ui.transcript.append(h("p", { class: "transcript-empty", text: "No messages yet." }));

  const header = h("div", { class: "ticket-header-slot" });
  const side = h("div", { class: "details-slot" });
  ui.composer = buildComposer();
  const view = h(
    "section",
    { class: "ticket-view", "data-testid": "ticket-view", "data-id": String(t.id) },
    h("div", { class: "ticket-center" }, header, ui.transcript, ui.composer.el),
    side,
  );
  showInMain(view);
  ui.header = header;
  ui.side = side;
  renderTicketMeta();
  scrollTranscript(true);
}

// The header and the details: Preact components, drawn again on every ticket update.
function renderTicketMeta() {
  const t = state.detail;
  if (!t || !ui.header) return;
  render(
    html`<${TicketHeader}
      ticket=${t}
      me=${state.me}
      members=${state.members}
      words=${words}
      solving=${state.solving}
      drawerOpen=${state.drawer}
      onBack=${backToList}
      onAssign=${assignTo}
      onSolve=${solveTicket}
      onReopen=${reopenTicket}
      onDetails=${() => setDrawer(!state.drawer)}
    />`,
    ui.header,
  );
  render(html`<${Details} ticket=${t} words=${words} open=${state.drawer} onClose=${() => setDrawer(false, { refocus: true })} />`, ui.side);
  if (ui.composer) ui.composer.update();
}

// The details drawer (below 980 px); closing it gives the focus back to its button.
function setDrawer(open, { refocus = false } = {}) {
  if (state.drawer === open) return;
  state.drawer = open;
  renderTicketMeta();
  if (refocus && ui.header) ui.header.querySelector("[data-testid=details-toggle]")?.focus();
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
    d ? h("time", { datetime: d.toISOString(), title: fullFormat.format(d), text: timeFormat.format(d) }) : null,
  ];
  return h(
    "div",
    { class: `tmsg tmsg-${role}`, "data-testid": "transcript-message", "data-role": role, "data-id": m.id != null ? String(m.id) : null },
    role === "system" ? null : role === "user" ? avatar(who) : role === "human_agent" ? avatar(who, "avatar-agent", m.author && m.author.avatar_url) : h("span", { class: "avatar avatar-bot", "aria-hidden": "true" }, icon("bot")),
    h("div", { class: "tmsg-body" }, role === "system" ? null : h("div", { class: "tmsg-meta" }, metaChildren), h("div", { class: "tmsg-bubble" }, richText(m.text)), role === "system" && d ? h("time", { class: "tmsg-systime", datetime: d.toISOString(), text: timeFormat.format(d) }) : null),
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
      d ? h("time", { datetime: d.toISOString(), title: fullFormat.format(d), text: timeFormat.format(d) }) : null,
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
  const cannedButton = h("button", {
    class: "btn btn-ghost btn-sm",
    type: "button",
    "data-testid": "canned-button",
    "aria-expanded": "false",
    title: "Insert a canned reply (c, or / in an empty box)",
    text: "Canned replies",
  });
  const pickerSlot = h("div", { class: "canned-slot" });
  const el = h(
    "form",
    { class: "composer", "aria-label": "Reply" },
    h("div", { class: "ctabs", role: "tablist", "aria-label": "Reply or note" }, replyTab, noteTab),
    notice,
    pickerSlot,
    input,
    h("div", { class: "composer-foot" }, hint, h("div", { class: "composer-actions" }, cannedButton, send)),
  );

  function update() {
    const view = composerView({ ticket: state.detail, mode: state.mode, sending: state.sending, text: input.value });
    el.classList.toggle("is-note", view.note);
    replyTab.setAttribute("aria-selected", String(!view.note));
    noteTab.setAttribute("aria-selected", String(view.note));
    noteTab.setAttribute("aria-pressed", String(view.note));
    input.disabled = view.inputDisabled;
    input.placeholder = view.placeholder;
    input.setAttribute("aria-label", view.inputLabel);
    send.querySelector(".send-label").textContent = view.sendLabel;
    send.disabled = view.sendDisabled;
    notice.hidden = !view.notice;
    notice.textContent = view.notice;
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
    const slash = slashQuery(input.value);
    if (slash !== null) openPicker({ slash: true, query: slash });
    else if (picker.slash) closePicker();
  });

  // The canned replies (inbox/canned.js): opened by its button or `c` with a search field of
  // their own, or by typing "/" in the empty box, which then filters them as it goes on.
  const picker = { open: false, slash: false, query: "", active: 0, replies: null, error: null, shown: [], ticketId: null };
  function drawPicker() {
    picker.shown = picker.replies ? matchCanned(picker.replies, picker.query) : [];
    picker.active = Math.min(picker.active, Math.max(0, picker.shown.length - 1));
    cannedButton.setAttribute("aria-expanded", String(picker.open));
    if (!picker.open) {
      render(null, pickerSlot);
      return;
    }
    render(
      html`<${CannedPicker}
        picker=${{ ...picker }}
        isAdmin=${!!state.me && state.me.role === "admin"}
        onQuery=${(query) => {
          picker.query = query;
          picker.active = 0;
          drawPicker();
        }}
        onKey=${pickerKey}
        onPick=${pick}
        onHover=${(i) => {
          picker.active = i;
          drawPicker();
        }}
      />`,
      pickerSlot,
    );
  }
  async function openPicker({ slash = false, query = "" } = {}) {
    const t = state.detail;
    if (!t || input.disabled) return;
    const fresh = !picker.open;
    Object.assign(picker, { open: true, slash, query, active: fresh ? 0 : picker.active });
    drawPicker();
    if (!fresh && picker.ticketId === t.id) return;
    picker.ticketId = t.id;
    try {
      picker.replies = await api(`/api/v1/canned-replies?ticket_id=${encodeURIComponent(t.id)}`);
      picker.error = null;
    } catch (e) {
      picker.replies = [];
      picker.error = e.message;
    }
    if (picker.open && isOpen(t.id)) drawPicker();
  }
  function closePicker({ refocus = false } = {}) {
    Object.assign(picker, { open: false, slash: false, query: "", active: 0 });
    drawPicker();
    if (refocus) input.focus();
  }
  function pick(reply) {
    const { value, caret } = insertCanned(input.value, input.selectionStart, input.selectionEnd, reply.text ?? reply.body);
    input.value = value;
    closePicker({ refocus: true });
    input.setSelectionRange(caret, caret);
    update();
  }
  // Arrows, Enter and Esc work the list from its search field or, after "/", the reply box.
  function pickerKey(e) {
    if (!picker.open || e.isComposing) return false;
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (e.key in moves && picker.shown.length) {
      picker.active = (picker.active + moves[e.key] + picker.shown.length) % picker.shown.length;
      drawPicker();
    } else if (e.key === "Enter" && picker.shown.length) {
      pick(picker.shown[picker.active]);
    } else if (e.key === "Escape") {
      closePicker({ refocus: true });
    } else {
      return false;
    }
    e.preventDefault();
    e.stopPropagation(); // Esc closes the list, not the details drawer
    return true;
  }
  cannedButton.addEventListener("click", () => (picker.open ? closePicker({ refocus: true }) : openPicker()));

  // Let the visitor see that someone is writing to them: one ping every ~3 s while typing
  // a reply (never for an internal note). A short delay drops the ping of a reply that is
  // pasted and sent at once, which would otherwise announce typing after the message.
  let pingTimer = null;
  function pingTyping() {
    if (pingTimer || Date.now() - state.lastTypingPing < TYPING_PING_MS) return;
    pingTimer = setTimeout(() => {
      pingTimer = null;
      const t = state.detail;
      const now = Date.now();
      if (!mayPingTyping({ ticket: t, mode: state.mode, sending: state.sending, text: input.value, lastPing: state.lastTypingPing, now })) return;
      state.lastTypingPing = now;
      api(`/api/v1/tickets/${encodeURIComponent(t.id)}/typing`, { method: "POST" }).catch(() => {});
    }, 300);
  }
  input.addEventListener("keydown", (e) => {
    if (pickerKey(e)) return;
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
          const cur = list.tickets.get(id);
          if (cur) placeTicket(list, { ...cur, waiting: false, last_message: { role: "human_agent", text, created_at: item && item.created_at } });
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
  return { el, update, input, setMode, openPicker };
}

async function assignTo(value) {
  const t = state.detail;
  if (!t) return;
  const memberId = memberIdOf(value, state.members);
  try {
    const updated = await api(`/api/v1/tickets/${encodeURIComponent(t.id)}/assign`, { method: "POST", body: { member_id: memberId } });
    applyTicketUpdate(updated || { ...t, assignee: memberId == null ? null : { id: memberId } });
    toast(memberId == null ? "Ticket unassigned" : `Assigned to ${(state.detail.assignee && state.detail.assignee.name) || "teammate"}`, "ok");
  } catch (e) {
    if (e.status !== 401) toast(e.message);
    renderTicketMeta(); // put the select back
  }
}

function solveTicket() {
  return changeStatus("solve", "open", "Solved — the AI assistant takes over the conversation again.");
}

function reopenTicket() {
  return changeStatus("reopen", "solved", "Reopened — the conversation is back with your team.");
}

// Solve or reopen the open ticket (`expected` is the status it must have for that).
async function changeStatus(verb, expected, done) {
  const t = state.detail;
  if (!t || t.status !== expected || state.solving) return;
  state.solving = true;
  renderTicketMeta();
  try {
    applyTicketUpdate(await api(`/api/v1/tickets/${encodeURIComponent(t.id)}/${verb}`, { method: "POST" }));
    state.mode = "reply";
    toast(done, "ok");
  } catch (e) {
    if (e.status !== 401) toast(e.message);
  } finally {
    state.solving = false;
    renderTicketMeta();
  }
}

// A ticket (list item or detail) came back from the API or the event stream.
function applyTicketUpdate(t, { live = false } = {}) {
  if (!t || t.id == null) return;
  placeTicket(list, stripDetail(t), { toTop: live });
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
  return list.selectedId === String(id) && !document.hidden;
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
  es.addEventListener("ticket", (ev) => {
    const event = readEvent("ticket", ev.data);
    if (!event) return;
    const k = String(event.ticket.id);
    const known = list.tickets.has(k);
    if (!isLooking(k)) raiseAlert(ticketAlert({ ticket: event.ticket, me: state.me, known, now: Date.now() }), () => openFromAlert(k));
    applyTicketUpdate(event.ticket, { live: true });
    const ticket = list.tickets.get(k);
    const news = ticketNews({ ticket, tab: list.tab, me: state.me, looking: isLooking(k), known });
    if (news.unseen) state.unseen.add(k);
    renderList();
    flashRow(k);
    if (news.announce) toast(`New ticket from ${contactName(ticket)}`, "info");
  });
  es.addEventListener("message", (ev) => {
    const event = readEvent("message", ev.data);
    if (!event) return;
    const id = event.ticketId;
    if (isOpen(id)) appendItem("m", event.message);
    const cur = list.tickets.get(id);
    raiseAlert(messageAlert({ ticket: cur || (isOpen(id) && state.detail), message: event.message, me: state.me, looking: isLooking(id) }), () => openFromAlert(id));
    if (cur) placeTicket(list, withMessage(cur, event.message), { toTop: true });
    if (!isLooking(id)) state.unseen.add(id);
    renderList();
    flashRow(id);
  });
  es.addEventListener("note", (ev) => {
    const event = readEvent("note", ev.data);
    if (event && isOpen(event.ticketId)) appendItem("n", event.note);
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
    const delay = reconnectDelay(state.esRetry);
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
      if (list.selectedId != null) reloadDetail();
    }, delay);
  });
}

function openFromAlert(id) {
  location.hash = ticketHash(id);
}

async function reloadDetail() {
  const id = list.selectedId;
  try {
    const t = await api(`/api/v1/tickets/${encodeURIComponent(id)}`);
    if (list.selectedId !== id || !state.detail) return;
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
  list.tickets.clear();
  list.order = [];
  list.cursor = null;
  list.counts = null;
  list.query = "";
  state.unseen.clear();
  list.selectedId = null;
  state.detail = null;
  state.members = [];
  state.drawer = false;
  unmountTicket();
  if (ui.topbar) render(null, ui.topbar);
  ui.list = ui.shell = ui.topbar = null;
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
  state.token = storedToken() || state.token;
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
  const vocabulary = await api("/api/v1/vocabulary", { auth: false }).catch(() => null);
  if (vocabulary) words = vocabulary;
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
  if (!document.hidden && list.selectedId != null && state.unseen.delete(list.selectedId)) renderList();
});

// Escape closes the details drawer.
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.drawer) setDrawer(false, { refocus: true });
});

// The shortcuts `?` lists (inbox/shortcuts.js), when not typing in a field.
const SHORTCUT_ACTIONS = {
  next: () => moveSelection(1),
  previous: () => moveSelection(-1),
  reply: () => ui.composer && ui.composer.setMode("reply"),
  note: () => ui.composer && ui.composer.setMode("note"),
  canned: () => ui.composer && ui.composer.openPicker(),
  assign: () => document.getElementById("assign-select")?.focus(),
  solve: () => solveTicket(),
  search: () => ui.search && ui.search.focus(),
  help: () => showShortcuts(),
};

document.addEventListener("keydown", (e) => {
  const action = ui.list && !(ui.shortcuts && ui.shortcuts.open) ? shortcutFor(e) : null;
  if (!action) return;
  e.preventDefault(); // "/" and the letters must not be typed where the focus lands
  SHORTCUT_ACTIONS[action]();
});

// The next (+1) or previous (-1) ticket of the list, opened.
function moveSelection(step) {
  const rows = [...ui.list.querySelectorAll('[data-testid="ticket-row"]')];
  if (!rows.length) return;
  const i = rows.findIndex((r) => r.classList.contains("selected"));
  const next = rows[Math.max(0, Math.min(rows.length - 1, i < 0 ? 0 : i + step))];
  next.focus();
  location.hash = next.getAttribute("href");
}

// The shortcuts' list in a modal dialog (Esc or Close shuts it; the focus goes back).
function showShortcuts() {
  if (!ui.shortcuts) {
    const list = h("div");
    const close = h("button", { class: "btn btn-sm", type: "button", "data-testid": "shortcuts-close", text: "Close" });
    ui.shortcuts = h(
      "dialog",
      { class: "shortcuts-dialog", "aria-labelledby": "shortcuts-title", "data-testid": "shortcuts-dialog" },
      h("div", { class: "shortcuts-head" }, h("h2", { id: "shortcuts-title", text: "Keyboard shortcuts" }), close),
      list,
    );
    close.addEventListener("click", () => ui.shortcuts.close());
    render(html`<${ShortcutsList} shortcuts=${SHORTCUTS} />`, list);
    document.body.append(ui.shortcuts);
  }
  if (!ui.shortcuts.open) ui.shortcuts.showModal();
}

boot().catch(() => {});
