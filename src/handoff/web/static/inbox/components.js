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

/**
 * The inbox's top bar: the brand, the live stream's state, the availability switch (members
 * only: the service admin has no status), who is signed in, Settings (admins) and Log out.
 */
export function Topbar({ me, live, savingAway, onToggleAway, onLogOut }) {
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
 * the assignee picker, Solve, and the button that opens the details drawer (narrow screens).
 */
export function TicketHeader({ ticket: t, me, members, words, solving, drawerOpen, onBack, onAssign, onSolve, onDetails }) {
  const solved = t.status === "solved";
  const { options, selected } = assigneeOptions(members, me, t.assignee);
  const channel = words.channels[t.channel] || t.channel || "";
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
        <button
          class=${`btn ${solved ? "btn-solved" : "btn-success"}`}
          type="button"
          data-testid="solve-button"
          disabled=${solved || solving}
          title=${solved ? "This ticket is solved" : "Solve the ticket and hand the conversation back to the AI"}
          onClick=${onSolve}
        >
          <${Icon} name="check" /><span>${solved ? "Solved" : "Solve"}</span>
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
