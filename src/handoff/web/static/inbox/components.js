/*!
 * handoff inbox — the top bar, the ticket list's rows, the open ticket's header (back, Details, Assign,
 * Solve) and its details pane, as Preact components over htm (no build step). They draw from their props only;
 * inbox.js owns the state and hears what the user does through the `on…` props.
 *
 * Security: every value is Preact text or an attribute (escaped); the only markup is the
 * constant icons.
 */
import { ICONS } from "../staff.js";
import { emailPieces, fullFormat, hue, initials, parseDate, relTime, safeHttpUrl, shortId } from "../staff/format.js";
import { html, useEffect, useRef, useState } from "../vendor/htm-preact.js";
import { activityAt, assigneeOptions, contactName, evidenceRows, previewText, subjectOf, ticketHash } from "./tickets.js";

export function Icon({ name, cls = "icon" }) {
  return html`<span class=${cls} dangerouslySetInnerHTML=${{ __html: ICONS[name] }} />`;
}

// Relative times on screen refresh together every half minute.
const clocks = new Set();
setInterval(() => {
  for (const tick of clocks) tick(Date.now());
}, 30000);

function RelTime({ iso, cls = null }) {
  const [, setNow] = useState(0);
  useEffect(() => {
    clocks.add(setNow);
    return () => clocks.delete(setNow);
  }, []);
  const d = parseDate(iso);
  if (!d) return null;
  return html`<time class=${cls} datetime=${d.toISOString()} title=${fullFormat.format(d)}>${relTime(iso)}</time>`;
}

// A long email wraps after its "@" and before its dots, never inside a word.
function Email({ address }) {
  return emailPieces(address).map((piece, i) => (i ? html`<wbr />${piece}` : piece));
}

// Initials on a stable colour, under the person's picture when there is one (http(s) only).
function Avatar({ name, cls = "", url = null }) {
  const [broken, setBroken] = useState(false);
  const src = broken ? null : safeHttpUrl(url);
  return html`
    <span class=${`avatar ${cls}`} aria-hidden="true" style=${{ "--h": String(hue(name)) }}>
      ${initials(name)}
      ${src ? html`<img src=${src} alt="" referrerpolicy="no-referrer" loading="lazy" onError=${() => setBroken(true)} />` : null}
    </span>
  `;
}

const LIVE_TEXT = { live: "Live", connecting: "Connecting", offline: "Reconnecting…" };

// Away members get no new tickets from automatic assignment. The switch is on, and green,
// while the member takes new tickets; off, amber, while away.
function AwaySwitch({ away, saving, onToggle }) {
  return html`
    <button
      class=${`away-toggle${away ? " is-away" : ""}`}
      type="button"
      role="switch"
      aria-label="Available for new tickets"
      aria-checked=${String(!away)}
      data-testid="away-toggle"
      title=${away ? "Away: no new tickets are assigned to you" : "Available: new tickets may be assigned to you"}
      disabled=${saving}
      onClick=${onToggle}
    >
      <span class="away-track" aria-hidden="true"><span class="away-thumb" /></span>
      <span class="away-label" aria-hidden="true">${away ? "Away" : "Available"}</span>
    </button>
  `;
}

const NOTIFY_HINT = {
  on: "Shown while the inbox is in the background.",
  off: "New tickets, and visitors writing on your tickets, while the inbox is in the background.",
  blocked: "This browser blocks them for this site: allow them in its site settings.",
  unsupported: "This browser cannot show desktop notifications.",
};

// One on/off switch of the alerts menu.
function AlertSwitch({ label, hint, on, disabled, testid, onToggle }) {
  return html`
    <li class="alert-option">
      <button class="alert-switch" type="button" role="switch" aria-checked=${String(on)} disabled=${disabled} data-testid=${testid} onClick=${onToggle}>
        <span class="away-track" aria-hidden="true"><span class="away-thumb" /></span>
        <span class="alert-label">${label}</span>
      </button>
      <p class="alert-hint">${hint}</p>
    </li>
  `;
}

/**
 * The bell: desktop notifications (asking the browser's permission when switched on) and a
 * sound, for new tickets and for visitors writing on the member's own tickets. `alerts` is
 * { notify: "on" | "off" | "blocked" | "unsupported", sound: boolean }.
 */
function AlertsMenu({ alerts, onChange }) {
  const [open, setOpen] = useState(false);
  const root = useRef(null);
  // A click elsewhere closes it; so does Esc from within it (the focus is on its button then).
  useEffect(() => {
    if (!open) return undefined;
    const elsewhere = (e) => root.current.contains(e.target) || setOpen(false);
    document.addEventListener("pointerdown", elsewhere);
    return () => document.removeEventListener("pointerdown", elsewhere);
  }, [open]);
  const escape = (e) => {
    if (e.key !== "Escape" || !open) return;
    e.stopPropagation();
    setOpen(false);
  };
  const any = alerts.notify === "on" || alerts.sound;
  return html`
    <div class="alerts" ref=${root} onKeyDown=${escape}>
      <button
        class=${`btn btn-ghost btn-sm alerts-button${any ? " is-on" : ""}`}
        type="button"
        data-testid="alerts-button"
        aria-haspopup="true"
        aria-expanded=${String(open)}
        aria-controls="alerts-menu"
        title="Notifications and sound"
        onClick=${() => setOpen(!open)}
      >
        <${Icon} name="bell" /><span class="sr-only">Notifications and sound</span>
      </button>
      <ul class="alerts-menu" id="alerts-menu" hidden=${!open} data-testid="alerts-menu" aria-label="Notifications and sound">
        <${AlertSwitch}
          label="Desktop notifications"
          hint=${NOTIFY_HINT[alerts.notify]}
          on=${alerts.notify === "on"}
          disabled=${alerts.notify === "blocked" || alerts.notify === "unsupported"}
          testid="notify-toggle"
          onToggle=${() => onChange({ notify: alerts.notify !== "on" })}
        />
        <${AlertSwitch}
          label="Sound"
          hint="A short chime, also while you look at the inbox."
          on=${alerts.sound}
          disabled=${false}
          testid="sound-toggle"
          onToggle=${() => onChange({ sound: !alerts.sound })}
        />
      </ul>
    </div>
  `;
}

/**
 * The inbox's top bar: the brand, the live stream's state, the availability switch (members
 * only: the service admin has no status), the alerts menu, the shortcuts, who is signed in,
 * Settings (admins) and Log out.
 */
export function Topbar({ me, live, savingAway, alerts, onAlerts, onShortcuts, onToggleAway, onLogOut }) {
  const name = (me && me.name) || "Agent";
  const liveText = LIVE_TEXT[live] || live;
  return html`
    <header class="topbar">
      <a class="topbar-brand" href="/inbox">
        <${Icon} name="logo" /><span>handoff</span><span class="topbar-sep">/</span><span class="topbar-page">Inbox</span>
      </a>
      <div class="topbar-live" role="status" aria-live="polite">
        <span class="live-dot" data-state=${live} title=${liveText} />
        <span class="live-text">${liveText}</span>
      </div>
      <div class="topbar-me">
        ${me && me.id != null ? html`<${AwaySwitch} away=${!!me.away} saving=${savingAway} onToggle=${onToggleAway} />` : null}
        <${AlertsMenu} alerts=${alerts} onChange=${onAlerts} />
        <button class="btn btn-ghost btn-sm shortcuts-button" type="button" data-testid="shortcuts-button" title="Keyboard shortcuts (?)" aria-label="Keyboard shortcuts" onClick=${onShortcuts}>
          <kbd>?</kbd>
        </button>
        <${Avatar} name=${name} cls="avatar-sm" url=${me && me.avatar_url} />
        <div class="me-text">
          <span class="me-name" data-testid="me-name">${name}</span>
          <span class="me-role">${(me && me.role) || ""}</span>
        </div>
        ${me && me.role === "admin"
          ? html`<a class="btn btn-ghost btn-sm" href="/settings" data-testid="settings-link">Settings</a>`
          : null}
        <button class="btn btn-ghost btn-sm" type="button" data-testid="logout" title="Log out" onClick=${onLogOut}>
          <${Icon} name="logout" /><span>Log out</span>
        </button>
      </div>
    </header>
  `;
}

// A row's first reason as a chip, the others counted ("+2") with their names on hover.
function RowReasons({ reasons, words }) {
  const title = (r) => words.reason_titles[r] || r;
  if (!reasons.length) return null;
  const [first, ...others] = reasons;
  return html`
    <span class="badge badge-reason" title=${words.reasons[first] || first}>${title(first)}</span>
    ${others.length ? html`<span class="badge badge-more" title=${others.map(title).join(", ")}>+${others.length}</span>` : null}
  `;
}

function TicketRow({ ticket: t, selected, unseen, words }) {
  const who = contactName(t);
  return html`
    <li>
      <a
        class=${`row${selected ? " selected" : ""}${unseen ? " unseen" : ""}`}
        href=${ticketHash(t.id)}
        data-testid="ticket-row"
        data-id=${String(t.id)}
        data-conversation=${t.conversation_id != null ? String(t.conversation_id) : null}
        data-status=${t.status}
        aria-current=${selected ? "true" : null}
      >
        <${Avatar} name=${who} />
        <div class="row-main">
          <div class="row-top">
            <span class="row-name">${who}</span>
            ${unseen ? html`<span class="unseen-dot" title="New activity" aria-label="New activity" />` : null}
            <${RelTime} iso=${activityAt(t)} cls="row-time" />
          </div>
          <div class="row-subject">${subjectOf(t)}</div>
          <div class="row-preview">${previewText(t)}</div>
          <div class="row-badges">
            ${t.status === "solved"
              ? html`<span class="badge badge-solved">Solved</span>`
              : t.waiting
                ? html`<span class="badge badge-waiting" data-testid="waiting-badge">Waiting</span>`
                : null}
            <${RowReasons} reasons=${t.reasons || []} words=${words} />
            <span class="row-spacer" />
            ${t.assignee
              ? html`<span class="row-assignee" title=${`Assigned to ${t.assignee.name}`}><${Avatar} name=${t.assignee.name} cls="avatar-xs" /></span>`
              : html`<span class="row-unassigned" title="Unassigned" aria-label="Unassigned" />`}
          </div>
        </div>
      </a>
    </li>
  `;
}

/**
 * The list's rows (keyed by ticket, so a row keeps its node, and its focus, across updates),
 * or placeholders while the first page loads.
 */
export function TicketRows({ tickets, selectedId, unseen, loading, words }) {
  if (!tickets.length && loading) {
    return [0, 1, 2, 3].map((i) => html`<li key=${i} class="row-skeleton" aria-hidden="true" />`);
  }
  return tickets.map((t) => {
    const id = String(t.id);
    return html`<${TicketRow} key=${id} ticket=${t} selected=${id === selectedId} unseen=${unseen.has(id)} words=${words} />`;
  });
}

/**
 * The open ticket's header: a back control to the list (phones), its subject and status,
 * the assignee picker, Solve (Reopen once solved), and the button that opens the details drawer (narrow screens).
 */
export function TicketHeader({ ticket: t, me, members, words, solving, drawerOpen, onBack, onAssign, onSolve, onReopen, onDetails }) {
  const solved = t.status === "solved";
  const { options, selected } = assigneeOptions(members, me, t.assignee);
  const channel = words.channels[t.channel] || t.channel || "";
  // Solve while open; once solved, the same place reopens it.
  const status = solved
    ? { cls: "btn", testid: "reopen-button", label: "Reopen", icon: null, onClick: onReopen, title: "Reopen the ticket: the conversation comes back to your team" }
    : { cls: "btn btn-success", testid: "solve-button", label: "Solve", icon: "check", onClick: onSolve, title: "Solve the ticket and hand the conversation back to the AI" };
  return html`
    <div class="ticket-header">
      <button class="btn btn-ghost btn-sm back-button" type="button" data-testid="back-to-list" onClick=${onBack}>
        <span aria-hidden="true">←</span><span>Tickets</span>
      </button>
      <div class="ticket-title">
        <h2 data-testid="ticket-subject">${subjectOf(t)}</h2>
        <div class="ticket-sub">
          <span class=${`badge badge-status badge-${solved ? "solved" : "open"}`} data-testid="ticket-status">${solved ? "Solved" : "Open"}</span>
          ${!solved && t.waiting ? html`<span class="badge badge-waiting">Waiting for reply</span>` : null}
          <span class="muted ticket-id" title=${`Ticket ${t.id}`}>#${shortId(t.id)}</span>
          <span class="muted ticket-sub-extra">·</span>
          <span class="muted ticket-sub-extra">${contactName(t)}</span>
          <span class="muted ticket-sub-extra">·</span>
          <span class="muted ticket-sub-extra">${channel}</span>
        </div>
      </div>
      <div class="ticket-actions">
        <label class="sr-only" for="assign-select">Assignee</label>
        <select class="select" id="assign-select" data-testid="assign-select" aria-label="Assignee" value=${selected} onChange=${(e) => onAssign(e.currentTarget.value)}>
          ${options.map((o) => html`<option value=${o.value} selected=${o.value === selected}>${o.label}</option>`)}
        </select>
        <button class=${status.cls} type="button" data-testid=${status.testid} disabled=${solving} title=${status.title} onClick=${status.onClick}>
          ${status.icon ? html`<${Icon} name=${status.icon} />` : null}<span>${status.label}</span>
        </button>
        <button
          class="btn details-button"
          type="button"
          data-testid="details-toggle"
          aria-controls="ticket-details"
          aria-expanded=${String(drawerOpen)}
          onClick=${onDetails}
        >
          Details
        </button>
      </div>
    </div>
  `;
}

function KeyValues({ rows }) {
  const shown = rows.filter(([, v]) => v !== null && v !== undefined && v !== "");
  return html`<dl class="kv">${shown.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

function Evidence({ ticket, reasonTitle }) {
  const rows = evidenceRows(ticket);
  if (!rows.length) return null;
  return html`
    <ul class="evidence" aria-label="Signals">
      ${rows.map(
        (ev) => html`
          <li class=${ev.fired ? "evidence-item" : "evidence-item near-miss"} data-testid="evidence-item" data-fired=${String(ev.fired)}>
            <div class="evidence-top">
              <span class="evidence-reason">${(ev.reason ? reasonTitle(ev.reason) : "signal") + (ev.fired ? "" : " · near miss")}</span>
              <span class="evidence-score">${ev.score === null ? "—" : ev.score.toFixed(2)}</span>
            </div>
            <span class="score-bar" aria-hidden="true">
              <span class="score-fill" style=${ev.score === null ? null : { width: `${Math.round(ev.score * 100)}%` }} />
            </span>
            ${ev.detail ? html`<p class="evidence-detail">${ev.detail}</p>` : null}
          </li>
        `,
      )}
    </ul>
  `;
}

const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select, textarea, [tabindex='0']";

// Tab and Shift+Tab go round the open drawer's controls instead of leaving it for the page
// behind (which the backdrop covers).
function keepFocusIn(container, e) {
  if (e.key !== "Tab") return;
  const stops = [...container.querySelectorAll(FOCUSABLE)].filter((el) => el.getClientRects().length);
  if (!stops.length) return;
  const [first, last] = [stops[0], stops[stops.length - 1]];
  const leaving = e.shiftKey ? document.activeElement === first : document.activeElement === last;
  if (!leaving) return;
  e.preventDefault();
  (e.shiftKey ? last : first).focus();
}

/**
 * Who the contact is, why the ticket was escalated, its summary and its details. Beside the
 * transcript on wide screens; below 980 px a drawer, opened by the header's Details button.
 */
export function Details({ ticket: t, words, open, onClose }) {
  // An opened drawer takes the focus (a wide screen's pane has no Close to focus).
  const closeRef = useRef(null);
  useEffect(() => {
    const close = closeRef.current;
    if (open && close && close.getClientRects().length) close.focus();
  }, [open]);
  const asideRef = useRef(null);
  const c = t.contact || {};
  const solved = t.status === "solved";
  const channel = words.channels[t.channel] || t.channel;
  const reasonTitle = (r) => words.reason_titles[r] || r;
  const reasons = t.reasons || [];
  const contactRows = [
    ["Email", c.email ? html`<a href=${`mailto:${c.email}`} data-testid="contact-email"><${Email} address=${c.email} /></a>` : null],
    ["Phone", c.phone ? html`<a href=${`tel:${c.phone}`}>${c.phone}</a>` : null],
    ["User ID", c.external_id || null],
  ].filter(([, v]) => v);
  return html`
    <div class="drawer-backdrop" hidden=${!open} onClick=${onClose} />
    <aside
      class="details"
      id="ticket-details"
      aria-label="Ticket details"
      data-testid="ticket-details"
      data-open=${String(open)}
      ref=${asideRef}
      onKeyDown=${(e) => open && closeRef.current.getClientRects().length && keepFocusIn(asideRef.current, e)}
    >
      <div class="details-bar">
        <h2 class="details-title">Details</h2>
        <button class="btn btn-ghost btn-sm" type="button" data-testid="details-close" ref=${closeRef} onClick=${onClose}>Close</button>
      </div>
      <section class="card contact-card">
        <div class="contact-head">
          <${Avatar} name=${contactName(t)} cls="avatar-lg" />
          <div>
            <h3 data-testid="contact-name">${!c.name && c.email ? html`<${Email} address=${c.email} />` : contactName(t)}</h3>
            <p class="muted">${c.email && c.name ? html`<${Email} address=${c.email} />` : words.channels[t.channel] || ""}</p>
          </div>
        </div>
        ${contactRows.length ? html`<${KeyValues} rows=${contactRows} />` : html`<p class="muted small">Anonymous visitor — no contact details.</p>`}
      </section>
      <section class="card">
        <h3 class="card-title">Why it was escalated</h3>
        ${reasons.length
          ? html`<div class="badges" data-testid="ticket-reasons">
              ${reasons.map((r) => html`<span class="badge badge-reason" data-testid="reason-badge" title=${words.reasons[r] || r}>${reasonTitle(r)}</span>`)}
            </div>`
          : html`<p class="muted small">No reasons recorded.</p>`}
        <${Evidence} ticket=${t} reasonTitle=${reasonTitle} />
      </section>
      <section class="card">
        <h3 class="card-title">Summary</h3>
        <p class="summary" data-testid="ticket-summary">${t.summary || "No summary."}</p>
      </section>
      <section class="card">
        <h3 class="card-title">Details</h3>
        <${KeyValues}
          rows=${[
            ["Status", solved ? "Solved" : "Open"],
            ["Channel", channel],
            ["Assignee", t.assignee ? t.assignee.name : "Unassigned"],
            ["Created", t.created_at ? html`<${RelTime} iso=${t.created_at} />` : null],
            ["Updated", t.updated_at ? html`<${RelTime} iso=${t.updated_at} />` : null],
            ["Conversation", t.conversation_id != null ? html`<span title=${String(t.conversation_id)}>#${shortId(t.conversation_id)}</span>` : null],
          ]}
        />
      </section>
    </aside>
  `;
}

/**
 * The canned replies under the reply box: filtered by what is typed (in its own search field,
 * or after "/" in the reply box), moved through with the arrow keys, inserted with Enter or
 * a click. Admins are pointed to Settings when there are none.
 */
export function CannedPicker({ picker, isAdmin, onQuery, onKey, onPick, onHover }) {
  const search = useRef(null);
  useEffect(() => {
    if (!picker.slash && search.current) search.current.focus();
  }, [picker.slash]);
  const { shown, active } = picker;
  const empty = picker.replies === null ? "Loading…" : picker.error || (picker.replies.length ? "No canned reply matches." : "No canned replies yet.");
  return html`
    <div class="canned" data-testid="canned-picker">
      <input
        class="canned-search"
        type="search"
        ref=${search}
        value=${picker.query}
        placeholder="Find a canned reply"
        aria-label="Find a canned reply"
        aria-controls="canned-list"
        aria-activedescendant=${shown.length ? `canned-${active}` : null}
        data-testid="canned-search"
        hidden=${picker.slash}
        onInput=${(e) => onQuery(e.currentTarget.value)}
        onKeyDown=${onKey}
      />
      ${shown.length
        ? html`<ul class="canned-list" id="canned-list" role="listbox" aria-label="Canned replies" data-testid="canned-list">
            ${shown.map(
              (r, i) => html`<li
                id=${`canned-${i}`}
                class=${`canned-option${i === active ? " active" : ""}`}
                role="option"
                aria-selected=${String(i === active)}
                data-testid="canned-option"
                onMouseDown=${(e) => e.preventDefault()}
                onMouseEnter=${() => onHover(i)}
                onClick=${() => onPick(r)}
              >
                <span class="canned-title">${r.title}</span>
                <span class="canned-text">${r.text ?? r.body}</span>
              </li>`,
            )}
          </ul>`
        : html`<p class="canned-empty" data-testid="canned-empty">
            ${empty}
            ${isAdmin && picker.replies && !picker.replies.length ? html` <a href="/settings#canned">Add some in Settings</a>.` : null}
          </p>`}
      <p class="canned-hint"><kbd>↑</kbd> <kbd>↓</kbd> to choose · <kbd>Enter</kbd> to insert · <kbd>Esc</kbd> to close</p>
    </div>
  `;
}

/** The list `?` opens: each shortcut's key and what it does. */
export function ShortcutsList({ shortcuts }) {
  return html`
    <dl class="shortcuts" data-testid="shortcuts-list">
      ${shortcuts.map(([key, does]) => html`<div class="shortcut"><dt><kbd>${key}</kbd></dt><dd>${does}</dd></div>`)}
      <div class="shortcut"><dt><kbd>Esc</kbd></dt><dd>Close this list, the details or the canned replies</dd></div>
    </dl>
  `;
}
