/*!
 * handoff settings — workspace admins configure an AI agent: integrations, the Escalate to
 * Human action, the widget, the knowledge base, the team, canned replies and each channel with
 * an outside API (GET /api/v1/channels). An ES module over the admin API.
 *
 * Security: everything that comes from the API or from an admin (names, URLs, setup steps,
 * form titles and help) is inserted with textContent or as attribute values only; the only
 * markup is staff.js's constant icons. Secrets are never pre-filled: the API never returns
 * them.
 */
import {
  ApiError,
  avatar,
  errorMessage,
  errorPath,
  h,
  icon,
  loginCard,
  request,
  safeHttpUrl,
  signInWithPassword,
  storedToken,
  storeToken,
  toast,
} from "./staff.js";
import { checkKnowledge, CsvError, importSummary, knowledgePath, limitsFrom, readKnowledgeCsv } from "./settings/knowledge.js";

// The page's code keeps its function scope until its sections become modules of their own.
(() => {
  // Same storage as the inbox: signing in on one signs in on the other.
  const AGENT_KEY = "handoff:settings:agent";
  const app = document.getElementById("settings-app");

  const SECTIONS = [
    ["integrations", "Integrations", "Helpdesks your tickets go to"],
    ["action", "Escalate to Human", "When and how the AI hands over"],
    ["widget", "Widget", "Colours, texts and the embed code"],
    ["knowledge", "Knowledge base", "Questions the AI answers"],
    ["team", "Team", "Members, roles and new tickets"],
    ["canned", "Canned replies", "Saved answers for the inbox"],
  ];
  // What a canned reply's body may name (service/canned.py VARIABLES), filled in per ticket.
  const CANNED_VARIABLES = [
    ["{first_name}", "the contact's first name"],
    ["{name}", "the contact's full name"],
    ["{email}", "the contact's email address"],
    ["{my_name}", "your name, as the member who sends it"],
  ];
  const CANNED_MAX_TITLE = 100;
  const CANNED_MAX_BODY = 10000;
  // What channels are called: GET /api/v1/vocabulary, read at boot.
  let CHANNELS = {};
  const DEFAULT_TOPICS = ["billing", "refunds", "security", "account access"];
  const DAYS = [
    ["mon", "Monday"],
    ["tue", "Tuesday"],
    ["wed", "Wednesday"],
    ["thu", "Thursday"],
    ["fri", "Friday"],
    ["sat", "Saturday"],
    ["sun", "Sunday"],
  ];
  const ASSIGNMENT = [
    ["manual", "Manual", "New tickets wait unassigned; a member assigns one, or answers it and takes it."],
    ["round_robin", "Round robin", "Each new ticket goes to the next available member in turn."],
    ["least_loaded", "Least loaded", "Each new ticket goes to the available member with the fewest open tickets."],
  ];
  const WIDGET_TEXTS = [
    ["title", "Title", 60, "The header title; the agent's name when empty."],
    ["subtitle", "Subtitle", 120, "A line under the title."],
    ["launcher_label", "Launcher label", 40, "The launcher button's name (tooltip and screen readers)."],
    ["placeholder", "Message box hint", 100, "What the empty message box says."],
    ["back_to_ai_label", "Back-to-the-AI button", 40, "Shown while the user waits for the team."],
  ];
  const WIDGET_DEFAULTS = {
    primary_color: "#4f46e5",
    text_color: "#ffffff",
    launcher_label: "Open chat",
    placeholder: "Write a message…",
    back_to_ai_label: "Back to the AI",
  };
  // Nicer names for the connect forms' enum values; unknown ones show as they are.
  const ENUM_LABELS = {
    api_token: "API token",
    oauth: "OAuth (approve on the platform)",
    private_app: "Private app token",
    client_credentials: "Client credentials",
    jwt_bearer: "JWT bearer",
    us: "United States",
    eu: "Europe",
    au: "Australia",
    email: "Email",
    chat: "Chat",
  };
  // Overrides for tests and proxies: kept out of the way under "Advanced".
  const ADVANCED = new Set(["base_url", "accounts_url"]);

  // ---------------------------------------------------------------- tiny helpers

  let uidCounter = 0;
  function uid(prefix) {
    uidCounter += 1;
    return `${prefix}-${uidCounter}`;
  }

  const enc = encodeURIComponent;

  // Help texts use `code` spans; render them as <code> without ever parsing markup.
  function helpText(text) {
    const frag = document.createDocumentFragment();
    String(text || "")
      .split("`")
      .forEach((part, i) => {
        if (!part) return;
        frag.append(i % 2 ? h("code", { text: part }) : document.createTextNode(part));
      });
    return frag;
  }


  async function copyText(text, button) {
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      // Older browsers or a blocked clipboard: copy through a throw-away text area.
      const area = h("textarea", { class: "sr-only", "aria-hidden": "true" });
      area.value = text;
      document.body.append(area);
      area.select();
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      area.remove();
    }
    if (button) {
      const before = button.dataset.label || button.textContent;
      button.dataset.label = before;
      button.textContent = ok ? "Copied" : "Copy failed";
      setTimeout(() => (button.textContent = before), 1600);
    }
    if (!ok) toast("Could not copy: select the text and copy it yourself.");
  }

  // A read-only value with a Copy button (webhook URLs, the embed code).
  function copyField(label, value, testid, { multiline = false } = {}) {
    const id = uid("copy");
    const input = multiline
      ? h("textarea", { id, class: "input mono copy-value", readonly: true, rows: 2, "data-testid": testid })
      : h("input", { id, class: "input mono copy-value", readonly: true, "data-testid": testid });
    input.value = value;
    input.addEventListener("focus", () => input.select());
    const button = h("button", { class: "btn btn-sm", type: "button", "aria-label": `Copy ${label.toLowerCase()}`, "data-testid": `${testid}-copy`, text: "Copy" });
    button.addEventListener("click", () => copyText(value, button));
    return h("div", { class: "field" }, h("label", { class: "field-label", for: id, text: label }), h("div", { class: "copy-row" }, input, button));
  }

  // ---------------------------------------------------------------- API

  // The field a validation error names: ["body", "credentials.url"] or ["body", "channels", 0].



  const state = {
    token: null,
    me: null,
    agents: [],
    agentId: null,
    platforms: [],
    senders: [], // the channels with an outside API: their connect form and tab words
    section: "integrations",
    openForm: null, // the platform whose connect form is open
    typed: {}, // platform -> non-secret values typed this visit, to pre-fill a reconnect
    loadSeq: 0,
    unsaved: null, // () => true while the knowledge base on screen has edits not saved
  };


  function getToken() {
    return storedToken();
  }
  function setToken(t) {
    state.token = t;
    storeToken(t);
  }

  async function api(path, { method = "GET", body, auth = true } = {}) {
    try {
      return await request(path, { method, body, token: auth ? state.token : null });
    } catch (err) {
      if (auth && err.status === 401 && state.me) {
        setToken(null);
        state.me = null;
        renderLogin("Your session has expired. Please sign in again.");
      }
      throw err;
    }
  }


  // ---------------------------------------------------------------- form plumbing
  // A form keeps a registry: field key -> { wrap, input, error }. Server errors are shown at
  // the field whose key is the longest prefix of the error's path; the rest at the form.

  function newRegistry(formError) {
    return { fields: new Map(), formError };
  }

  // One labelled field. `target` is the input the label names (default: `control` itself);
  // `group` labels a set of inputs (checkboxes, a composite editor) with aria-labelledby.
  // The admin's text in each language visitors are answered in, folded away until needed.
  const LANGUAGE_NAMES = { en: "English", es: "Spanish", fr: "French", de: "German", pt: "Portuguese", it: "Italian" };
  function perLanguage(values, testid) {
    const boxes = Object.entries(LANGUAGE_NAMES).map(([code, name]) => {
      const box = h("textarea", { class: "input", rows: 2, maxlength: 2000, "aria-label": name, "data-testid": `${testid}-${code}` });
      box.value = (values && values[code]) || "";
      return [code, name, box];
    });
    const filled = boxes.filter(([, , box]) => box.value).length;
    const el = h(
      "details",
      { class: "advanced", open: filled > 0, "data-testid": testid },
      h("summary", { text: filled ? `In other languages (${filled})` : "In other languages" }),
      ...boxes.map(([, name, box]) => h("label", { class: "field-label" }, name, box)),
    );
    const value = () => Object.fromEntries(boxes.map(([code, , box]) => [code, box.value.trim()]).filter(([, text]) => text));
    return { el, value };
  }

  function field(reg, key, { label, help, control, required = false, testid, wide = false, target, group = false }) {
    const input = group ? null : target || (control.matches("input, select, textarea") ? control : null);
    const helpId = uid("help");
    const errId = uid("err");
    const error = h("p", { class: "field-error", id: errId, role: "alert", hidden: true, "data-testid": testid ? `${testid}-error` : null });
    const helpEl = help ? h("p", { class: "field-help", id: helpId }, help instanceof Node ? help : helpText(help)) : null;
    const describedBy = [helpEl ? helpId : null, errId].filter(Boolean).join(" ");
    const star = required ? h("span", { class: "req", "aria-hidden": "true", text: " *" }) : null;
    let head;
    let isCheck = false;
    if (input) {
      if (!input.id) input.id = uid("f");
      input.setAttribute("aria-describedby", describedBy);
      if (required) input.setAttribute("aria-required", "true");
      isCheck = input === control && input.type === "checkbox";
      head = isCheck
        ? h("label", { class: "check", for: input.id }, input, h("span", { class: "field-label" }, label, star))
        : h("label", { class: "field-label", for: input.id }, label, star);
    } else {
      const labelId = uid("lbl");
      head = h("span", { class: "field-label", id: labelId }, label, star);
      control.setAttribute("aria-labelledby", labelId);
      control.setAttribute("aria-describedby", describedBy);
      if (!control.getAttribute("role")) control.setAttribute("role", "group");
    }
    const wrap = h("div", { class: `field${wide ? " wide" : ""}${isCheck ? " field-bool" : ""}`, "data-field": key }, head, isCheck ? null : control, helpEl, error);
    const focusable = input || control.querySelector("input, select, textarea, button") || control;
    if (reg) {
      const entry = { wrap, input: focusable, error };
      reg.fields.set(key, entry);
      // Editing a field answers its error: the red goes with it, the other fields keep theirs.
      for (const kind of ["input", "change"]) wrap.addEventListener(kind, () => clearFieldError(entry));
    }
    return wrap;
  }

  function clearFieldError(f) {
    f.error.hidden = true;
    f.error.textContent = "";
    f.wrap.classList.remove("invalid");
    for (const el of f.wrap.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function clearErrors(reg) {
    for (const f of reg.fields.values()) clearFieldError(f);
    if (reg.formError) {
      reg.formError.hidden = true;
      reg.formError.textContent = "";
    }
  }

  function fieldFor(reg, path) {
    let best = null;
    for (const key of reg.fields.keys()) {
      if ((path === key || path.startsWith(`${key}.`)) && (!best || key.length > best.length)) best = key;
    }
    return best ? reg.fields.get(best) : null;
  }

  // A rule the service checks names its field in front of the message ("role: you cannot
  // change this on your own account"): such an answer belongs at that field too.
  function fieldItems(reg, data) {
    if (!data) return null;
    if (Array.isArray(data.detail)) return data.detail;
    const named = typeof data.detail === "string" ? /^([\w.[\]]+): (.+)$/s.exec(data.detail) : null;
    return named && fieldFor(reg, named[1]) ? [{ loc: ["body", named[1]], msg: named[2] }] : null;
  }

  // Show an ApiError: each validation error at its field, anything else at the form.
  function showErrors(reg, err) {
    clearErrors(reg);
    const items = err ? fieldItems(reg, err.data) : null;
    const code = err && err.data ? err.data.code : undefined;
    let first = null;
    const loose = [];
    if (items) {
      for (const item of items) {
        const f = fieldFor(reg, errorPath(item));
        if (f && !f.wrap.hidden) {
          const fold = f.wrap.closest("details");
          if (fold) fold.open = true;
          if (f.error.hidden) {
            f.error.textContent = errorMessage(item, code);
            f.error.hidden = false;
            f.wrap.classList.add("invalid");
            // A composite editor may point at the exact part the message names.
            const part = f.locate ? f.locate(errorMessage(item, code)) : null;
            (part || f.input).setAttribute("aria-invalid", "true");
            first = first || { input: part || f.input };
          }
        } else {
          // A whole-form error ("credentials", "platform") needs no field name in front.
          const path = errorPath(item).replace(/^credentials\.?/, "");
          loose.push(path && path !== "platform" ? `${path}: ${errorMessage(item, code)}` : errorMessage(item, code));
        }
      }
    } else {
      loose.push(err ? err.message : "Something went wrong.");
    }
    if (loose.length && reg.formError) {
      reg.formError.textContent = loose.join(" · ");
      reg.formError.hidden = false;
    } else if (loose.length) {
      toast(loose.join(" · "));
    }
    if (first) first.input.focus();
    else if (reg.formError && !reg.formError.hidden) reg.formError.focus();
  }

  function formErrorBox(testid) {
    return h("p", { class: "form-error", role: "alert", tabindex: "-1", hidden: true, "data-testid": testid });
  }

  function busy(buttons, on, label) {
    for (const b of buttons) {
      if (on) {
        b.dataset.label = b.textContent;
        b.disabled = true;
        if (label && b === buttons[0]) b.textContent = label;
      } else {
        b.disabled = false;
        if (b.dataset.label) b.textContent = b.dataset.label;
      }
    }
  }

  // ---------------------------------------------------------------- JSON-schema forms
  // Connect forms come from the pydantic models of the platforms (GET /api/v1/platforms) and
  // of the channels (GET /api/v1/channels). Strings, secrets, integers, booleans, enums and
  // lists of strings are rendered with their title and description.

  function specOf(name, prop, requiredNames) {
    let p = prop || {};
    let nullable = false;
    if (Array.isArray(p.anyOf)) {
      const real = p.anyOf.filter((x) => x && x.type !== "null");
      nullable = real.length < p.anyOf.length;
      p = Object.assign({}, real[0] || {}, { title: prop.title, description: prop.description, default: prop.default });
    }
    const secret = p.format === "password" || p.writeOnly === true;
    let kind = "text";
    if (Array.isArray(p.enum)) kind = "enum";
    else if (p.type === "integer" || p.type === "number") kind = "number";
    else if (p.type === "boolean") kind = "bool";
    else if (p.type === "array") kind = "list";
    else if (secret) kind = "secret";
    return {
      name,
      kind,
      nullable,
      integer: p.type === "integer",
      title: p.title || prop.title || name,
      description: p.description || prop.description || "",
      default: prop.default,
      enum: p.enum || [],
      required: requiredNames.includes(name),
      maxLength: p.maxLength,
      advanced: ADVANCED.has(name),
    };
  }

  function schemaForm(schema, { prefix = "", values = {}, testid = "field", formError }) {
    const reg = newRegistry(formError);
    const props = (schema && schema.properties) || {};
    const required = (schema && schema.required) || [];
    const specs = Object.entries(props).map(([name, prop]) => specOf(name, prop, required));
    const controls = new Map(); // name -> { spec, input, wrap }
    const main = h("div", { class: "form-grid" });
    const advancedGrid = h("div", { class: "form-grid" });
    const advanced = h("details", { class: "advanced" }, h("summary", { text: "Advanced" }), advancedGrid);

    for (const spec of specs) {
      const control = controlFor(spec, values[spec.name], testid);
      const wrap = field(reg, `${prefix}${spec.name}`, {
        label: spec.title,
        help: spec.description,
        control,
        required: spec.required,
        testid: `${testid}-${spec.name}`,
        wide: spec.kind === "list" || (spec.description || "").length > 140,
      });
      controls.set(spec.name, { spec, input: control, wrap });
      (spec.advanced ? advancedGrid : main).append(wrap);
    }

    const el = h("div", { class: "schema-form" }, main, advancedGrid.childElementCount ? advanced : null);

    // An `auth` choice decides which fields apply: a field described "With OAuth: …" is only
    // shown while OAuth is chosen.
    function applyAuth() {
      const auth = controls.get("auth");
      if (!auth) return;
      const chosen = String(auth.input.value || "").replace(/_/g, " ").toLowerCase();
      for (const { spec, wrap } of controls.values()) {
        const m = /^with ([^:]+):/i.exec(spec.description || "");
        if (m) wrap.hidden = !m[1].toLowerCase().includes(chosen);
      }
    }
    if (controls.has("auth")) controls.get("auth").input.addEventListener("change", applyAuth);
    applyAuth();

    return {
      el,
      reg,
      authValue() {
        const auth = controls.get("auth");
        return auth ? auth.input.value : null;
      },
      hasOAuth() {
        const auth = controls.get("auth");
        return !!auth && auth.spec.enum.includes("oauth");
      },
      onAuthChange(fn) {
        const auth = controls.get("auth");
        if (auth) auth.input.addEventListener("change", fn);
      },
      // Live lists from the platform turn their fields into dropdowns.
      setOptions(options) {
        for (const [name, choices] of Object.entries(options || {})) {
          const c = controls.get(name);
          if (!c || !Array.isArray(choices) || !choices.length || c.spec.kind === "secret") continue;
          const current = c.input.value;
          const select = h("select", { class: "input", id: c.input.id, "data-testid": c.input.getAttribute("data-testid"), "aria-describedby": c.input.getAttribute("aria-describedby") });
          if (!c.spec.required) select.append(h("option", { value: "", text: "— Not set —" }));
          for (const choice of choices) {
            select.append(h("option", { value: String(choice.value), text: `${choice.label} (${choice.value})` }));
          }
          select.value = current;
          c.input.replaceWith(select);
          c.input = select;
          const f = reg.fields.get(`${prefix}${name}`);
          if (f) f.input = select;
        }
      },
      // Values to send; empty optional fields are left out so the defaults apply.
      values() {
        const out = {};
        const typed = {};
        for (const { spec, input, wrap } of controls.values()) {
          if (wrap.hidden) continue;
          if (spec.kind === "bool") {
            out[spec.name] = input.checked;
            typed[spec.name] = input.checked;
            continue;
          }
          const raw = String(input.value || "");
          if (spec.kind === "list") {
            const items = raw
              .split(/\n|,/)
              .map((s) => s.trim())
              .filter(Boolean);
            if (items.length || spec.required) out[spec.name] = items;
            typed[spec.name] = items;
            continue;
          }
          const value = spec.kind === "secret" ? raw : raw.trim();
          if (!value) continue;
          if (spec.kind === "number") {
            const n = Number(value);
            out[spec.name] = Number.isFinite(n) && value !== "" ? n : value;
          } else {
            out[spec.name] = value;
          }
          if (spec.kind !== "secret") typed[spec.name] = out[spec.name];
        }
        return { send: out, typed };
      },
    };
  }

  function controlFor(spec, value, testid) {
    const tid = `${testid}-${spec.name}`;
    const initial = value !== undefined && value !== null ? value : spec.default;
    if (spec.kind === "enum") {
      const select = h("select", { class: "input", "data-testid": tid });
      if (spec.nullable) select.append(h("option", { value: "", text: "— Not set —" }));
      for (const v of spec.enum) select.append(h("option", { value: String(v), text: ENUM_LABELS[v] || String(v) }));
      if (initial !== undefined && initial !== null) select.value = String(initial);
      return select;
    }
    if (spec.kind === "bool") {
      const box = h("input", { type: "checkbox", class: "checkbox", "data-testid": tid });
      box.checked = !!initial;
      return box;
    }
    if (spec.kind === "list") {
      const area = h("textarea", { class: "input", rows: 3, "data-testid": tid, placeholder: "One per line" });
      area.value = Array.isArray(initial) ? initial.join("\n") : "";
      return area;
    }
    const input = h("input", {
      class: "input",
      type: spec.kind === "secret" ? "password" : spec.kind === "number" ? "number" : "text",
      step: spec.kind === "number" && spec.integer ? "1" : null,
      inputmode: spec.kind === "number" ? "numeric" : null,
      autocomplete: spec.kind === "secret" ? "new-password" : "off",
      spellcheck: "false",
      maxlength: spec.maxLength || null,
      "data-testid": tid,
    });
    // Secrets are never pre-filled: the API does not return them, and a stored one must be
    // typed again to be replaced.
    if (spec.kind === "secret") {
      input.placeholder = "Never shown again after saving";
    } else if (initial !== undefined && initial !== null) {
      input.value = String(initial);
    }
    return input;
  }

  // ---------------------------------------------------------------- login
  function renderLogin(notice) {
    document.title = "Sign in · handoff settings";
    const err = h("p", { class: "login-error", role: "alert", "data-testid": "login-error", hidden: !notice, text: notice || "" });
    const email = h("input", { id: "login-email", type: "email", autocomplete: "username", required: true, "data-testid": "login-email" });
    const password = h("input", { id: "login-password", type: "password", autocomplete: "current-password", required: true, "data-testid": "login-password" });
    const submit = h("button", { class: "btn btn-primary btn-block", type: "submit", "data-testid": "login-submit", text: "Sign in" });
    const form = loginCard(
      "Sign in to settings",
      "Workspace admins connect helpdesks and set up the Escalate to Human action here.",
      err,
      h("div", { class: "login-fields" }, h("label", { for: "login-email", text: "Email" }), email, h("label", { for: "login-password", text: "Password" }), password),
      submit,
      h("a", { class: "link-button center", href: "/inbox", text: "Go to the inbox" }),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.hidden = true;
      const data = await signInWithPassword({ email, password, submit, err });
      if (!data) return;
      setToken(data.token);
      try {
        await boot();
      } catch (ex) {
        submit.disabled = false;
        submit.textContent = "Sign in";
        err.textContent = ex.message;
        err.hidden = false;
      }
    });
    app.replaceChildren(h("div", { class: "login-screen" }, form));
    email.focus();
  }

  function logOut() {
    const token = state.token;
    setToken(null);
    state.me = null;
    fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
    renderLogin();
  }

  function renderNotAdmin() {
    document.title = "Settings · handoff";
    app.replaceChildren(
      h(
        "div",
        { class: "login-screen" },
        h(
          "div",
          { class: "login-card", role: "alert", "data-testid": "not-admin" },
          h("div", { class: "login-logo" }, icon("logo"), h("span", { text: "handoff" })),
          h("h1", { text: "Only admins can change settings" }),
          h("p", { class: "login-sub", text: `You're signed in as ${(state.me && state.me.name) || "a member"}, who is not an admin of this workspace. Ask an admin to change integrations, the escalate action, the widget, the knowledge base, the team or canned replies.` }),
          h("a", { class: "btn btn-primary btn-block", href: "/inbox", text: "Back to the inbox" }),
          h("button", { class: "link-button center", type: "button", onclick: logOut, text: "Sign in as someone else" }),
        ),
      ),
    );
  }

  // ---------------------------------------------------------------- the shell
  const ui = {};

  function renderShell() {
    const meName = (state.me && state.me.name) || "Admin";
    ui.agentSelect = h("select", { id: "agent-select", class: "input input-sm", "data-testid": "agent-select" });
    for (const a of state.agents) ui.agentSelect.append(h("option", { value: a.id, text: a.name }));
    ui.agentSelect.value = state.agentId || "";
    ui.agentSelect.addEventListener("change", () => selectAgent(ui.agentSelect.value));

    ui.nav = h(
      "nav",
      { class: "settings-nav", "aria-label": "Settings sections" },
      h(
        "ul",
        {},
        sections().map(([key, label, sub]) =>
          h("li", {}, h("a", { href: `#${key}`, class: "nav-item", "data-section": key, "data-testid": `nav-${key}` }, h("span", { class: "nav-label", text: label }), h("span", { class: "nav-sub", text: sub }))),
        ),
      ),
    );
    ui.main = h("main", { class: "settings-main", id: "settings-main", tabindex: "-1", "aria-live": "off" });
    const topbar = h(
      "header",
      { class: "topbar" },
      h("a", { class: "topbar-brand", href: "/" }, icon("logo"), h("span", { text: "handoff" }), h("span", { class: "topbar-sep", text: "/" }), h("span", { class: "topbar-page", text: "Settings" })),
      h("div", { class: "agent-picker" }, h("label", { for: "agent-select", text: "AI agent" }), ui.agentSelect),
      h(
        "div",
        { class: "topbar-me" },
        h("a", { class: "btn btn-ghost btn-sm", href: "/inbox", "data-testid": "inbox-link", text: "Inbox" }),
        h("div", { class: "me-text" }, h("span", { class: "me-name", "data-testid": "me-name", text: meName }), h("span", { class: "me-role", text: (state.me && state.me.role) || "" })),
        h("button", { class: "btn btn-ghost btn-sm", type: "button", "data-testid": "logout", onclick: logOut, text: "Log out" }),
      ),
    );
    app.replaceChildren(h("div", { class: "settings-shell" }, topbar, h("div", { class: "settings-body" }, ui.nav, ui.main)));
  }

  function markNav() {
    for (const a of ui.nav.querySelectorAll(".nav-item")) {
      if (a.dataset.section === state.section) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }

  function agent() {
    return state.agents.find((a) => a.id === state.agentId) || null;
  }

  // Edits to the knowledge base live on the page until saved: leaving them is asked first.
  function mayLeave() {
    return !(state.unsaved && state.unsaved()) || window.confirm("Leave the knowledge base? Your changes are not saved.");
  }

  function selectAgent(id) {
    if (!mayLeave()) {
      ui.agentSelect.value = state.agentId;
      return;
    }
    state.agentId = id;
    state.openForm = null;
    state.actionId = null;
    try {
      localStorage.setItem(AGENT_KEY, id);
    } catch {
      /* no storage: the URL keeps it */
    }
    const url = new URL(location.href);
    url.searchParams.set("agent", id);
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    renderSection();
  }

  async function refreshAgents() {
    state.agents = (await api("/api/v1/agents")) || [];
  }

  // The fixed sections, then a tab per channel with an outside API (GET /api/v1/channels).
  function sections() {
    return [...SECTIONS, ...state.senders.map((c) => [c.channel, c.title, c.tab])];
  }

  function sectionHead(title, lead) {
    return h("div", { class: "section-head" }, h("h1", { id: "section-title", text: title }), h("p", { class: "section-lead", text: lead }));
  }

  function loading() {
    ui.main.replaceChildren(h("div", { class: "placeholder" }, h("div", { class: "spinner", role: "progressbar", "aria-label": "Loading" })));
  }

  async function renderSection() {
    markNav();
    const a = agent();
    if (!a) {
      ui.main.replaceChildren(h("div", { class: "placeholder" }, h("h2", { text: "No AI agent yet" }), h("p", { text: "Create one with POST /api/v1/agents, then come back here." })));
      return;
    }
    const seq = ++state.loadSeq;
    loading();
    const renderers = { integrations: renderIntegrations, action: renderAction, widget: renderWidget, knowledge: renderKnowledge, team: renderTeam, canned: renderCanned };
    const sender = state.senders.find((c) => c.channel === state.section);
    try {
      const view = await (sender ? renderChannel(a, sender) : (renderers[state.section] || renderIntegrations)(a));
      if (seq !== state.loadSeq) return; // another section or agent was picked meanwhile
      view.setAttribute("data-testid", `section-${state.section}`);
      view.setAttribute("aria-labelledby", "section-title");
      ui.main.replaceChildren(view);
      document.title = `${sections().find((s) => s[0] === state.section)[1]} · Settings · handoff`;
    } catch (e) {
      if (seq !== state.loadSeq || e.status === 401) return;
      ui.main.replaceChildren(
        h("div", { class: "placeholder" }, h("h2", { text: "Could not load this section" }), h("p", { text: e.message }), h("button", { class: "btn", type: "button", onclick: renderSection, text: "Try again" })),
      );
    }
  }

  function platformTitle(platform) {
    if (platform === "native") return "Built-in inbox";
    const p = state.platforms.find((x) => x.platform === platform);
    return p ? p.title : platform;
  }

  // ---------------------------------------------------------------- 1. integrations
  async function renderIntegrations(a) {
    const list = (await api(`/api/v1/agents/${enc(a.id)}/integrations`)) || [];
    const connected = list.filter((i) => i.status === "connected");
    const connectedSet = new Set(connected.map((i) => i.platform));
    const section = h("section", { class: "settings-section" }, sectionHead("Integrations", `Where ${a.name}'s escalations become tickets. Credentials are checked with a real call before anything is saved, and are never shown again.`));

    const connectedList = h("div", { class: "card-list", "data-testid": "connected-list" });
    connectedList.append(nativeCard());
    for (const integration of connected) if (integration.platform !== "native") connectedList.append(integrationCard(a, integration));
    section.append(h("h2", { class: "group-title", text: "Connected" }), connectedList);

    const available = state.platforms
      .filter((p) => !connectedSet.has(p.platform))
      .sort((x, y) => (x.platform === "webhook") - (y.platform === "webhook") || x.title.localeCompare(y.title));
    if (available.length) {
      const grid = h("div", { class: "platform-grid", "data-testid": "available-list" });
      for (const p of available) grid.append(availableCard(a, p));
      section.append(h("h2", { class: "group-title", text: "Connect a helpdesk" }), grid);
    }
    return section;
  }

  function platformMark(title) {
    return h("span", { class: "platform-mark", "aria-hidden": "true", text: String(title || "?").slice(0, 1).toUpperCase() });
  }

  function nativeCard() {
    return h(
      "article",
      { class: "card integ-card", "data-testid": "integration-card", "data-platform": "native" },
      h(
        "div",
        { class: "integ-head" },
        platformMark("h"),
        h("div", { class: "integ-title" }, h("h3", { text: "Built-in inbox" }), h("p", { class: "muted small", text: "Always connected. Tickets appear live in the handoff inbox." })),
        h("span", { class: "badge badge-solved", text: "Connected" }),
        h("a", { class: "btn btn-sm", href: "/inbox", text: "Open the inbox" }),
      ),
    );
  }

  function integrationCard(a, integration) {
    const title = platformTitle(integration.platform);
    const formSlot = h("div", { class: "form-slot" });
    const reconnect = h("button", { class: "btn btn-sm", type: "button", "aria-expanded": "false", "data-testid": `reconnect-${integration.platform}`, text: "Reconnect" });
    const failing = Boolean(integration.health && integration.health.failing);
    const card = h(
      "article",
      { class: "card integ-card", "data-testid": "integration-card", "data-platform": integration.platform },
      h(
        "div",
        { class: "integ-head" },
        platformMark(title),
        h("div", { class: "integ-title" }, h("h3", { text: title }), h("p", { class: "muted small", text: "Connected. Finish the setup on the platform so replies and solved tickets come back." })),
        failing ? h("span", { class: "badge badge-failing", text: "Failing" }) : h("span", { class: "badge badge-solved", text: "Connected" }),
        reconnect,
      ),
    );
    if (failing) card.append(healthBox(a, integration, title));
    if (integration.webhook_url) card.append(copyField("Webhook URL", integration.webhook_url, `webhook-url-${integration.platform}`));
    const steps = Array.isArray(integration.webhook_setup) ? integration.webhook_setup : [];
    if (steps.length) {
      card.append(
        h("details", { class: "steps-box", open: true }, h("summary", { text: `Set up on ${title}` }), h("ol", { class: "setup-steps", "data-testid": `setup-steps-${integration.platform}` }, steps.map((s) => h("li", {}, helpText(s))))),
      );
    }
    card.append(formSlot);
    const platform = state.platforms.find((p) => p.platform === integration.platform);
    const toggle = () => {
      const open = !formSlot.childElementCount;
      formSlot.replaceChildren(open && platform ? connectForm(a, platform, { connected: true, onCancel: toggle }) : "");
      reconnect.setAttribute("aria-expanded", String(open));
      reconnect.textContent = open ? "Close" : "Reconnect";
      state.openForm = open ? integration.platform : null;
    };
    reconnect.addEventListener("click", toggle);
    if (state.openForm === integration.platform && platform) {
      formSlot.append(connectForm(a, platform, { connected: true, onCancel: toggle }));
      reconnect.setAttribute("aria-expanded", "true");
      reconnect.textContent = "Close";
    }
    return card;
  }

  function ageText(seconds) {
    const minutes = Math.round(seconds / 60);
    if (minutes < 1) return "under a minute";
    if (minutes < 90) return `${minutes} min`;
    const hours = Math.round(minutes / 60);
    return hours < 48 ? `${hours} h` : `${Math.round(hours / 24)} days`;
  }

  // A helpdesk whose calls fail: its latest error, what waits for it, and "Retry all", which
  // makes its parked and backing-off jobs due now (the others are due or running already).
  function healthBox(a, integration, title) {
    const health = integration.health;
    const waiting = `${health.waiting} job${health.waiting === 1 ? "" : "s"} waiting`;
    const parked = health.parked ? `, ${health.parked} of them stopped after their retries` : "";
    const retry = h("button", { class: "btn btn-sm", type: "button", "data-testid": `retry-all-${integration.platform}`, text: "Retry all" });
    retry.addEventListener("click", async () => {
      busy([retry], true, "Retrying…");
      try {
        const done = await api(`/api/v1/agents/${enc(a.id)}/integrations/${enc(integration.id)}/retry`, { method: "POST" });
        toast(done.retried ? `Retrying ${done.retried} job${done.retried === 1 ? "" : "s"} on ${title} now.` : `Nothing to retry: the jobs for ${title} are already due.`, "ok");
        renderSection();
      } catch (ex) {
        busy([retry], false);
        if (ex.status !== 401) toast(ex.message);
      }
    });
    return h(
      "div",
      { class: "health-box", role: "status", "data-testid": `health-${integration.platform}` },
      h(
        "div",
        { class: "health-text" },
        h("strong", { text: `Calls to ${title} are failing.` }),
        h("span", { class: "health-error", "data-testid": `health-error-${integration.platform}`, text: health.last_error || "" }),
        h("span", { class: "health-waiting", "data-testid": `health-waiting-${integration.platform}`, text: `${waiting}${parked}; the oldest for ${ageText(health.oldest_waiting_seconds)}.` }),
      ),
      retry,
    );
  }

  function availableCard(a, platform) {
    const slot = h("div", { class: "form-slot" });
    const button = h("button", { class: "btn btn-sm", type: "button", "aria-expanded": "false", "data-testid": `connect-${platform.platform}`, text: "Connect" });
    const card = h(
      "article",
      { class: "card integ-card", "data-testid": "platform-card", "data-platform": platform.platform },
      h("div", { class: "integ-head" }, platformMark(platform.title), h("div", { class: "integ-title" }, h("h3", { text: platform.title }), platform.description ? h("p", { class: "muted small", text: platform.description }) : null), button),
      slot,
    );
    const toggle = () => {
      const open = !slot.childElementCount;
      slot.replaceChildren(open ? connectForm(a, platform, { connected: false, onCancel: toggle }) : "");
      button.setAttribute("aria-expanded", String(open));
      button.textContent = open ? "Close" : "Connect";
      card.classList.toggle("expanded", open);
      state.openForm = open ? platform.platform : null;
      if (open) {
        const first = slot.querySelector("input, select, textarea");
        if (first) first.focus();
      }
    };
    button.addEventListener("click", toggle);
    if (state.openForm === platform.platform) {
      slot.append(connectForm(a, platform, { connected: false, onCancel: toggle }));
      button.setAttribute("aria-expanded", "true");
      button.textContent = "Close";
      card.classList.add("expanded");
    }
    return card;
  }

  function connectForm(a, platform, { connected, onCancel }) {
    const formError = formErrorBox(`connect-error-${platform.platform}`);
    const sf = schemaForm(platform.form, { prefix: "credentials.", values: state.typed[platform.platform] || {}, testid: `cred-${platform.platform}`, formError });
    const submit = h("button", { class: "btn btn-primary", type: "submit", "data-testid": `connect-submit-${platform.platform}` });
    const cancel = h("button", { class: "btn btn-ghost", type: "button", text: "Cancel", onclick: onCancel });
    const oauthNote = h("div", { class: "notice", role: "status", hidden: true, "data-testid": `oauth-note-${platform.platform}` });
    const optionsNote = h("p", { class: "muted small", role: "status" });
    const form = h(
      "form",
      { class: "connect-form", novalidate: true, "data-testid": `connect-form-${platform.platform}`, "aria-label": `Connect ${platform.title}` },
      connected ? h("p", { class: "muted small", text: "Reconnecting replaces the saved credentials: type the secrets again." }) : null,
      sf.el,
      optionsNote,
      formError,
      oauthNote,
      h("div", { class: "form-actions" }, submit, cancel),
    );
    const oauth = () => sf.hasOAuth() && sf.authValue() === "oauth";
    const label = () => {
      submit.textContent = oauth() ? "Connect with OAuth" : connected ? "Reconnect" : "Connect";
    };
    sf.onAuthChange(label);
    label();

    if (connected) {
      optionsNote.textContent = "Loading the lists this platform offers…";
      api(`/api/v1/agents/${enc(a.id)}/integrations/${enc(platform.platform)}/options`)
        .then((options) => {
          sf.setOptions(options);
          optionsNote.textContent = options && Object.keys(options).length ? "Pick from the lists your account offers." : "";
        })
        .catch((e) => {
          optionsNote.textContent = `The platform's lists could not be loaded (${e.message}); type the ids instead.`;
        });
    }

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(sf.reg);
      oauthNote.hidden = true;
      const { send, typed } = sf.values();
      const body = { platform: platform.platform, credentials: send };
      if (oauth()) {
        // Open the tab now, while the click still counts as the user's: a tab opened after
        // the request returns would be blocked as a pop-up.
        const tab = window.open("", "_blank");
        busy([submit, cancel], true, "Starting…");
        try {
          const started = await api(`/api/v1/agents/${enc(a.id)}/integrations/authorize`, { method: "POST", body });
          state.typed[platform.platform] = typed;
          const url = safeHttpUrl(started.authorize_url);
          if (tab && url) {
            tab.opener = null;
            tab.location.href = url;
          } else if (tab) tab.close();
          oauthNote.replaceChildren(
            h("strong", { text: `Approve access on ${platform.title} in the new tab.` }),
            " This page refreshes when you come back. ",
            url ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "Open the approval page again" }) : null,
            h("span", { class: "muted small block", text: `The redirect URL registered in your OAuth client must be ${started.redirect_uri}` }),
          );
          oauthNote.hidden = false;
          state.awaitingOAuth = true;
        } catch (ex) {
          if (tab) tab.close();
          if (ex.status !== 401) showErrors(sf.reg, ex);
        } finally {
          busy([submit, cancel], false);
          label();
        }
        return;
      }
      busy([submit, cancel], true, "Checking…");
      try {
        await api(`/api/v1/agents/${enc(a.id)}/integrations`, { method: "POST", body });
        state.typed[platform.platform] = typed;
        state.openForm = null;
        toast(`${platform.title} is connected to ${a.name}.`, "ok");
        renderSection();
      } catch (ex) {
        busy([submit, cancel], false);
        label();
        if (ex.status !== 401) showErrors(sf.reg, ex);
      }
    });
    return form;
  }

  // Back from the platform's approval tab: show the new connection.
  window.addEventListener("focus", () => {
    if (state.awaitingOAuth && state.section === "integrations" && state.me) {
      state.awaitingOAuth = false;
      state.openForm = null;
      renderSection();
    }
  });

  // ---------------------------------------------------------------- 2. the escalate action
  async function renderAction(a) {
    const [actions, integrations] = await Promise.all([api(`/api/v1/agents/${enc(a.id)}/actions`), api(`/api/v1/agents/${enc(a.id)}/integrations`)]);
    const connected = (integrations || []).filter((i) => i.status === "connected").map((i) => i.platform);
    const section = h("section", { class: "settings-section" }, sectionHead("Escalate to Human", "When the AI hands a conversation to your team, where the ticket goes, and what the user is told."));
    const list = actions || [];
    // state.actionId: the action being edited, "new" for a new one, null for the first.
    const current = state.actionId === "new" ? null : list.find((x) => x.id === state.actionId) || list[0] || null;
    if (state.actionId !== "new") state.actionId = current ? current.id : null;
    if (list.length) {
      const picker = h("select", { class: "input input-sm", id: "action-picker", "data-testid": "action-picker" });
      for (const x of list) picker.append(h("option", { value: x.id, text: `${x.name}${x.enabled ? "" : " (draft)"}` }));
      picker.append(h("option", { value: "new", text: "+ New action" }));
      picker.value = current ? current.id : "new";
      picker.addEventListener("change", () => {
        state.actionId = picker.value;
        renderSection();
      });
      section.append(h("div", { class: "action-picker" }, h("label", { for: "action-picker", text: "Action" }), picker));
    }
    section.append(actionForm(a, current, connected));
    return section;
  }

  function actionForm(a, action, connected) {
    const formError = formErrorBox("action-error");
    const reg = newRegistry(formError);
    const v = action || {
      name: "Escalate_To_Human",
      platform: connected.includes("native") ? "native" : connected[0],
      when_to_use: "",
      channels: [...a.channels],
      handoff_message: "",
      ask_for_email: true,
      sensitive_topics: DEFAULT_TOPICS,
      trigger_examples: [],
      thresholds: {},
      alternative_message: "",
      business_hours: null,
      wait_timeout_seconds: 300,
      inactivity_timeout_seconds: null,
    };

    const name = h("input", { class: "input mono", type: "text", maxlength: 64, spellcheck: "false", autocomplete: "off", "data-testid": "action-name" });
    name.value = v.name || "";
    const platform = h("select", { class: "input", "data-testid": "action-platform" });
    for (const p of connected) platform.append(h("option", { value: p, text: platformTitle(p) }));
    platform.value = v.platform || "";
    const when = h("textarea", { class: "input", rows: 4, maxlength: 4000, "data-testid": "action-when", placeholder: "e.g. Escalate when the user asks for a person, when a payment failed, or when the AI cannot solve the problem after two tries." });
    when.value = v.when_to_use || "";

    const channelBoxes = new Map();
    const channels = h(
      "div",
      { class: "checks" },
      a.channels.map((ch) => {
        const id = uid("ch");
        const box = h("input", { type: "checkbox", class: "checkbox", id, value: ch, "data-testid": `action-channel-${ch}` });
        box.checked = (v.channels || []).includes(ch);
        channelBoxes.set(ch, box);
        return h("label", { class: "check", for: id }, box, h("span", { text: CHANNELS[ch] || ch }));
      }),
    );
    const handoff = h("textarea", { class: "input", rows: 3, maxlength: 2000, "data-testid": "action-handoff-message", placeholder: "Empty: a default that says a person will answer in this chat." });
    handoff.value = v.handoff_message || "";
    const askEmail = h("input", { type: "checkbox", class: "checkbox", "data-testid": "action-ask-email" });
    askEmail.checked = v.ask_for_email !== false;
    const topics = chipsEditor(v.sensitive_topics || [], { label: "Add a topic", testid: "action-topics", placeholder: "Type a topic, press Enter" });
    const triggers = h("textarea", { class: "input", rows: 3, "data-testid": "action-triggers", placeholder: "One example per line, e.g. My card was charged twice" });
    triggers.value = (v.trigger_examples || []).join("\n");
    const alternative = h("textarea", { class: "input", rows: 2, maxlength: 2000, "data-testid": "action-alternative" });
    alternative.value = v.alternative_message || "";
    const handoffByLanguage = perLanguage(v.handoff_messages, "action-handoff-messages");
    const alternativeByLanguage = perLanguage(v.alternative_messages, "action-alternative-messages");
    const uncoveredHint = h("span");
    const updateUncovered = () => {
      const off = a.channels.filter((ch) => !channelBoxes.get(ch).checked).map((ch) => CHANNELS[ch] || ch);
      uncoveredHint.textContent = off.length
        ? `Said instead of escalating on ${off.join(", ")}, which this action does not cover: an email address or a phone number. Empty: a default naming the covered channels.`
        : "Every channel of this agent is covered, so this message is not used now.";
    };
    channels.addEventListener("change", updateUncovered);
    updateUncovered();
    const hours = hoursEditor(v.business_hours);
    const wait = durationInput(v.wait_timeout_seconds, "action-wait");
    const idle = durationInput(v.inactivity_timeout_seconds, "action-inactivity");

    const status = action
      ? h("span", { class: `badge ${action.enabled ? "badge-solved" : "badge-waiting"}`, "data-testid": "action-status", text: action.enabled ? "Enabled" : "Draft" })
      : h("span", { class: "badge badge-open", "data-testid": "action-status", text: "New" });

    const enable = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "action-save-enable", text: "Save & enable" });
    const draft = h("button", { class: "btn", type: "button", "data-testid": "action-save-draft", text: "Save as draft" });

    const basics = h(
      "fieldset",
      { class: "card fieldset" },
      h("legend", { text: "The action" }),
      h(
        "div",
        { class: "form-grid" },
        field(reg, "name", { label: "Name", help: "Letters, digits and underscores, like Escalate_To_Human. It is the tool name a language model sees.", control: name, required: true, testid: "action-name" }),
        field(reg, "platform", {
          label: "Ticket platform",
          help: h("span", {}, "Only connected platforms can be chosen. ", h("a", { href: "#integrations", text: "Connect another under Integrations" }), "."),
          control: platform,
          required: true,
          testid: "action-platform",
        }),
        field(reg, "when_to_use", { label: "When to use", help: "When to escalate, what goes across, what it changes. A language model reads this as the tool's description; the local decider matches its sentences too.", control: when, required: true, wide: true, testid: "action-when" }),
        field(reg, "channels", { label: "Channels", help: "Where this action escalates. On the others the AI gives the alternative message below.", control: channels, required: true, wide: true, testid: "action-channels", group: true }),
      ),
    );

    const conversation = h(
      "fieldset",
      { class: "card fieldset" },
      h("legend", { text: "What the user is told" }),
      h(
        "div",
        { class: "form-grid" },
        field(reg, "handoff_message", { label: "Handoff message", help: "Sent when the conversation is handed over.", control: handoff, wide: true, testid: "action-handoff-message" }),
        field(reg, "ask_for_email", { label: "Ask anonymous users for an email before escalating", help: "They may answer “skip”. Outside business hours they are always asked.", control: askEmail, wide: true, testid: "action-ask-email" }),
        field(reg, "alternative_message", { label: "Alternative message for uncovered channels", help: uncoveredHint, control: alternative, wide: true, testid: "action-alternative" }),
        field(reg, "handoff_messages", { label: "Handoff message per language", help: "Said to visitors in that language instead of the message above. Empty: the message above, or the default in their language.", control: handoffByLanguage.el, wide: true, group: true, testid: "action-handoff-messages" }),
        field(reg, "alternative_messages", { label: "Alternative message per language", help: "Like the handoff message: a visitor in that language gets this one.", control: alternativeByLanguage.el, wide: true, group: true, testid: "action-alternative-messages" }),
      ),
    );
    const triggersSet = h(
      "fieldset",
      { class: "card fieldset" },
      h("legend", { text: "What escalates" }),
      h(
        "div",
        { class: "form-grid" },
        field(reg, "sensitive_topics", { label: "Sensitive topics", help: "Topics that always go to a person. Remove them all to turn this signal off.", control: topics.el, target: topics.input, wide: true, testid: "action-topics" }),
        field(reg, "trigger_examples", { label: "Trigger examples", help: "Messages that should escalate, one per line (optional).", control: triggers, wide: true, testid: "action-triggers" }),
      ),
    );

    const timing = h(
      "fieldset",
      { class: "card fieldset" },
      h("legend", { text: "Business hours and timers" }),
      field(reg, "business_hours", { label: "Business hours", help: "Outside them the ticket is still made, and the user is told when a person will answer.", control: hours.el, wide: true, testid: "action-hours", group: true }),
      h(
        "div",
        { class: "form-grid" },
        field(reg, "wait_timeout_seconds", { label: "Tell a waiting user their place is kept after", help: "Without a first human answer by then, the user may go on with the AI or leave an email. Empty: never.", control: wait.el, target: wait.input, testid: "action-wait" }),
        field(reg, "inactivity_timeout_seconds", { label: "Hand back to the AI after no messages for", help: "While the team owns the conversation. Empty: never.", control: idle.el, target: idle.input, testid: "action-inactivity" }),
      ),
    );
    reg.fields.get("business_hours").locate = hours.locate;

    const form = h(
      "form",
      { class: "action-form", novalidate: true, "data-testid": "action-form", "aria-label": "Escalate to Human action" },
      h("div", { class: "form-title" }, h("h2", { text: action ? action.name : "New action" }), status),
      basics,
      triggersSet,
      conversation,
      timing,
      formError,
      h("div", { class: "form-actions sticky-actions" }, enable, draft, h("span", { class: "muted small", text: "Save & enable turns the action on for the chosen channels." })),
    );

    async function save(enabled) {
      clearErrors(reg);
      const body = {
        kind: "escalate_to_human",
        name: name.value.trim(),
        platform: platform.value,
        when_to_use: when.value.trim(),
        channels: a.channels.filter((ch) => channelBoxes.get(ch).checked),
        enabled,
        handoff_message: handoff.value.trim() || null,
        ask_for_email: askEmail.checked,
        sensitive_topics: topics.values(),
        trigger_examples: triggers.value
          .split("\n")
          .map((s) => s.trim())
          .filter(Boolean),
        // Not edited here, but PUT replaces everything: keep what the API has.
        thresholds: (action && action.thresholds) || {},
        handoff_messages: handoffByLanguage.value(),
        alternative_messages: alternativeByLanguage.value(),
        alternative_message: alternative.value.trim() || null,
        business_hours: hours.value(),
        wait_timeout_seconds: wait.value(),
        inactivity_timeout_seconds: idle.value(),
      };
      const local = [];
      if (body.wait_timeout_seconds === undefined) local.push({ loc: ["body", "wait_timeout_seconds"], msg: "Enter a whole number, or leave it empty to turn it off." });
      if (body.inactivity_timeout_seconds === undefined) local.push({ loc: ["body", "inactivity_timeout_seconds"], msg: "Enter a whole number, or leave it empty to turn it off." });
      if (!body.platform) local.push({ loc: ["body", "platform"], msg: "Connect a platform first." });
      if (local.length) {
        showErrors(reg, new ApiError(422, "", { detail: local }));
        return;
      }
      busy([enabled ? enable : draft, enabled ? draft : enable], true, "Saving…");
      try {
        const saved = action
          ? await api(`/api/v1/actions/${enc(action.id)}`, { method: "PUT", body })
          : await api(`/api/v1/agents/${enc(a.id)}/actions`, { method: "POST", body });
        state.actionId = saved.id;
        toast(enabled ? `${saved.name} is saved and enabled.` : `${saved.name} is saved as a draft.`, "ok");
        renderSection();
      } catch (ex) {
        busy([enable, draft], false);
        if (ex.status !== 401) showErrors(reg, ex);
      }
    }
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      save(true);
    });
    draft.addEventListener("click", () => save(false));
    return form;
  }

  // Tags typed one at a time: Enter or comma adds, the × on a chip removes it.
  function chipsEditor(initial, { label, testid, placeholder, type = "text", format = (x) => x }) {
    let items = [...initial];
    const list = h("ul", { class: "chips", "data-testid": `${testid}-list` });
    const input = h("input", { class: "input chip-input", id: uid("chip"), type, placeholder, "aria-label": label, "data-testid": `${testid}-input` });
    const add = h("button", { class: "btn btn-sm", type: "button", text: "Add" });
    function draw() {
      list.replaceChildren(
        ...items.map((item, i) =>
          h(
            "li",
            { class: "chip", "data-testid": `${testid}-chip` },
            h("span", { text: format(item) }),
            h("button", {
              class: "chip-remove",
              type: "button",
              "aria-label": `Remove ${format(item)}`,
              text: "×",
              onclick: () => {
                items.splice(i, 1);
                draw();
                input.focus();
              },
            }),
          ),
        ),
      );
    }
    function commit() {
      const value = input.value.replace(/,$/, "").trim();
      if (value && !items.includes(value)) items.push(value);
      input.value = "";
      draw();
    }
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || (e.key === "," && type === "text")) {
        e.preventDefault();
        commit();
      } else if (e.key === "Backspace" && !input.value && items.length) {
        items.pop();
        draw();
      }
    });
    add.addEventListener("click", commit);
    draw();
    return {
      el: h("div", { class: "chips-editor" }, list, h("div", { class: "chip-add" }, input, add)),
      input,
      values() {
        if (input.value.trim()) commit();
        return [...items];
      },
      set(next) {
        items = [...next];
        draw();
      },
    };
  }

  // A duration in the unit that reads best; empty means off (null).
  function durationInput(seconds, testid) {
    const units = [
      ["days", 86400],
      ["hours", 3600],
      ["minutes", 60],
      ["seconds", 1],
    ];
    const number = h("input", { class: "input num", type: "number", min: "0", step: "any", id: uid("dur"), inputmode: "decimal", placeholder: "Off", "data-testid": testid });
    const unit = h("select", { class: "input unit", "aria-label": "Unit", "data-testid": `${testid}-unit` });
    for (const [name] of units) unit.append(h("option", { value: name, text: name }));
    if (seconds) {
      const [name, size] = units.find(([, size]) => seconds % size === 0);
      number.value = String(seconds / size);
      unit.value = name;
    } else {
      unit.value = "minutes";
    }
    return {
      el: h("div", { class: "duration" }, number, unit),
      input: number,
      // null when off, undefined when not a number.
      value() {
        const raw = number.value.trim();
        if (!raw) return null;
        const n = Number(raw);
        if (!Number.isFinite(n)) return undefined;
        const size = units.find(([name]) => name === unit.value)[1];
        return Math.round(n * size);
      },
    };
  }

  function zones() {
    try {
      return Intl.supportedValuesOf("timeZone");
    } catch {
      return ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney"];
    }
  }

  // Business hours: always open, or a time zone, ranges per weekday and holidays.
  function hoursEditor(initial) {
    const name = uid("hours");
    const always = h("input", { type: "radio", name, id: uid("r"), value: "always", "data-testid": "hours-always" });
    const custom = h("input", { type: "radio", name, id: uid("r"), value: "custom", "data-testid": "hours-custom" });
    always.checked = !initial;
    custom.checked = !!initial;
    const start = initial || { timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC", weekly: { mon: [["09:00", "17:00"]], tue: [["09:00", "17:00"]], wed: [["09:00", "17:00"]], thu: [["09:00", "17:00"]], fri: [["09:00", "17:00"]] }, holidays: [] };

    const listId = uid("zones");
    const tz = h("input", { class: "input", id: uid("tz"), list: listId, autocomplete: "off", spellcheck: "false", "data-testid": "hours-timezone" });
    tz.value = start.timezone || "UTC";
    const datalist = h("datalist", { id: listId }, zones().map((z) => h("option", { value: z })));

    const days = new Map(); // key -> { open, ranges: [{start, end, row}] , box }
    const grid = h("div", { class: "week", role: "group", "aria-label": "Weekly opening hours" });
    for (const [key, label] of DAYS) {
      const open = h("input", { type: "checkbox", class: "checkbox", id: uid("day"), "data-testid": `hours-${key}-open` });
      const rangesBox = h("div", { class: "ranges" });
      const addBtn = h("button", { class: "btn btn-ghost btn-sm", type: "button", "aria-label": `Add hours on ${label}`, text: "+ Add hours" });
      const day = { open, rangesBox, rows: [], label, addBtn };
      days.set(key, day);
      addBtn.addEventListener("click", () => {
        addRange(day, ["13:00", "17:00"]);
        day.rows[day.rows.length - 1].start.focus();
      });
      open.addEventListener("change", () => {
        if (open.checked && !day.rows.length) addRange(day, ["09:00", "17:00"]);
        drawDay(day);
      });
      const ranges = (start.weekly && (start.weekly[key] || start.weekly[label.toLowerCase()])) || [];
      for (const r of ranges) addRange(day, r);
      open.checked = ranges.length > 0;
      grid.append(h("div", { class: "day", "data-day": key }, h("label", { class: "check day-name", for: open.id }, open, h("span", { text: label })), rangesBox, addBtn));
      drawDay(day);
    }

    function addRange(day, [from, to]) {
      const startEl = h("input", { type: "time", class: "input time", "aria-label": `${day.label} opens at`, "data-testid": "hours-start" });
      const endEl = h("input", { type: "time", class: "input time", "aria-label": `${day.label} closes at`, "data-testid": "hours-end" });
      startEl.value = from || "";
      endEl.value = to === "24:00" ? "00:00" : to || "";
      const remove = h("button", { class: "chip-remove", type: "button", "aria-label": `Remove these hours on ${day.label}`, text: "×" });
      const row = h("div", { class: "range" }, startEl, h("span", { "aria-hidden": "true", text: "–" }), endEl, remove);
      const entry = { start: startEl, end: endEl, row };
      remove.addEventListener("click", () => {
        day.rows = day.rows.filter((x) => x !== entry);
        if (!day.rows.length) day.open.checked = false;
        drawDay(day);
      });
      day.rows.push(entry);
      drawDay(day);
    }

    function drawDay(day) {
      day.rangesBox.replaceChildren(...(day.open.checked ? day.rows.map((r) => r.row) : [h("span", { class: "muted small", text: "Closed" })]));
      day.addBtn.hidden = !day.open.checked;
    }

    const copyWeekdays = h("button", { class: "btn btn-sm", type: "button", text: "Copy Monday to Tuesday–Friday" });
    copyWeekdays.addEventListener("click", () => {
      const mon = days.get("mon");
      const ranges = mon.open.checked ? mon.rows.map((r) => [r.start.value, r.end.value]) : [];
      for (const key of ["tue", "wed", "thu", "fri"]) {
        const day = days.get(key);
        day.rows = [];
        day.open.checked = ranges.length > 0;
        for (const r of ranges) addRange(day, r);
        drawDay(day);
      }
    });

    const holidays = chipsEditor(start.holidays || [], {
      label: "Add a holiday",
      testid: "hours-holidays",
      type: "date",
      placeholder: "",
      format: (iso) => {
        const d = new Date(`${iso}T12:00:00`);
        return Number.isNaN(d.getTime()) ? iso : d.toLocaleDateString(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric" });
      },
    });

    const body = h(
      "div",
      { class: "hours-body" },
      h("div", { class: "field" }, h("label", { class: "field-label", for: tz.id, text: "Time zone" }), tz, datalist),
      h("div", { class: "week-head" }, h("span", { class: "field-label", text: "Weekly hours" }), copyWeekdays),
      grid,
      h("p", { class: "field-help", text: "A closing time of 00:00 means midnight. A night shift is two ranges on two days." }),
      h("div", { class: "field" }, h("label", { class: "field-label", for: holidays.input.id, text: "Holidays (closed all day)" }), holidays.el),
    );
    const sync = () => (body.hidden = !custom.checked);
    always.addEventListener("change", sync);
    custom.addEventListener("change", sync);
    sync();

    return {
      el: h(
        "div",
        { class: "hours" },
        h("div", { class: "radios" }, h("label", { class: "check", for: always.id }, always, h("span", { text: "Always: a person can answer any time" })), h("label", { class: "check", for: custom.id }, custom, h("span", { text: "Only during business hours" }))),
        body,
      ),
      // "timezone: …" or "weekly.mon[0]: …" names the input to mark.
      locate(message) {
        if (/^timezone\b/.test(message)) return tz;
        const m = /^weekly\.([a-z]+)\[(\d+)\]/.exec(message);
        const day = m && [...days.entries()].find(([key, d]) => key === m[1] || d.label.toLowerCase() === m[1]);
        const row = day && day[1].rows[Number(m[2])];
        if (row) return row.start;
        if (/^holidays/.test(message)) return holidays.input;
        return null;
      },
      value() {
        if (!custom.checked) return null;
        const weekly = {};
        for (const [key, day] of days) {
          if (!day.open.checked || !day.rows.length) continue;
          weekly[key] = day.rows.map((r) => {
            // <input type=time> cannot say 24:00: a range closing at 00:00 closes at midnight.
            const end = r.end.value === "00:00" && r.start.value !== "00:00" ? "24:00" : r.end.value;
            return [r.start.value, end];
          });
        }
        return { timezone: tz.value.trim(), weekly, holidays: holidays.values() };
      },
    };
  }

  // ---------------------------------------------------------------- 3. widget
  async function renderWidget(a) {
    const current = await api(`/api/v1/agents/${enc(a.id)}/widget`, { auth: false });
    const formError = formErrorBox("widget-error");
    const reg = newRegistry(formError);
    const inputs = {};
    const pickers = {};
    const preview = widgetPreview(a);

    const colourField = (key, label, help) => {
      const text = h("input", { class: "input mono", type: "text", maxlength: 7, spellcheck: "false", placeholder: WIDGET_DEFAULTS[key], "data-testid": `widget-${key}` });
      text.value = current[key] || "";
      const picker = h("input", { class: "swatch-input", type: "color", "aria-label": `${label}: pick a colour`, "data-testid": `widget-${key}-picker` });
      picker.value = expandHex(current[key] || WIDGET_DEFAULTS[key]);
      picker.addEventListener("input", () => {
        text.value = picker.value;
        redraw();
      });
      text.addEventListener("input", () => {
        const hex = expandHex(text.value.trim());
        if (hex) picker.value = hex;
        redraw();
      });
      inputs[key] = text;
      pickers[key] = picker;
      return field(reg, key, { label, help, control: h("div", { class: "colour" }, picker, text), target: text, testid: `widget-${key}` });
    };

    const grid = h(
      "div",
      { class: "form-grid" },
      colourField("primary_color", "Primary colour", "Launcher, header, the visitor's messages, buttons. Empty: #4f46e5."),
      colourField("text_color", "Text on the primary colour", "Pick one that reads on the primary colour. Empty: white."),
    );
    for (const [key, label, max, help] of WIDGET_TEXTS) {
      const input = h("input", { class: "input", type: "text", maxlength: max, placeholder: key === "title" ? a.name : WIDGET_DEFAULTS[key] || "", "data-testid": `widget-${key}` });
      input.value = current[key] || "";
      input.addEventListener("input", redraw);
      inputs[key] = input;
      grid.append(field(reg, key, { label, help: `${help} At most ${max} characters.`, control: input, testid: `widget-${key}` }));
    }

    function values() {
      const out = {};
      for (const [key, input] of Object.entries(inputs)) out[key] = input.value.trim() || null;
      return out;
    }
    function redraw() {
      preview.update(values());
    }
    redraw();

    const save = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "widget-save", text: "Save widget" });
    const reset = h("button", { class: "btn", type: "button", "data-testid": "widget-reset", text: "Use the defaults" });
    reset.addEventListener("click", () => {
      for (const input of Object.values(inputs)) input.value = "";
      for (const [key, picker] of Object.entries(pickers)) picker.value = WIDGET_DEFAULTS[key];
      redraw();
    });
    const form = h("form", { class: "card widget-form", novalidate: true, "data-testid": "widget-form", "aria-label": "Widget look" }, grid, formError, h("div", { class: "form-actions" }, save, reset));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(reg);
      busy([save, reset], true, "Saving…");
      try {
        await api(`/api/v1/agents/${enc(a.id)}/widget`, { method: "PUT", body: values() });
        toast("The widget is updated. Sites pick it up within a minute.", "ok");
      } catch (ex) {
        if (ex.status !== 401) showErrors(reg, ex);
      } finally {
        busy([save, reset], false);
      }
    });

    const snippet = `<script src="${location.origin}/static/widget.js" data-agent="${a.id}" defer></script>`;
    const embed = h(
      "div",
      { class: "card" },
      h("h2", { class: "card-heading", text: "Embed on your site" }),
      h("p", { class: "muted small", text: "Paste this before </body> on every page that should show the chat." }),
      copyField("Embed code", snippet, "embed-snippet", { multiline: true }),
      h("p", { class: "small" }, h("a", { href: `/demo/${enc(a.id)}`, target: "_blank", rel: "noopener", text: "Try it on the demo page" }), " · ", h("a", { href: `/help/${enc(a.id)}`, target: "_blank", rel: "noopener", text: "Open the help page" })),
    );

    return h(
      "section",
      { class: "settings-section" },
      sectionHead("Widget", "How the chat looks on your site. Everything here is public: anyone who knows the agent id can read it."),
      h("div", { class: "widget-layout" }, h("div", { class: "widget-col" }, form, embed), h("div", { class: "preview-col" }, h("h2", { class: "group-title", id: "preview-title", text: "Live preview" }), preview.el)),
    );
  }

  function expandHex(value) {
    if (/^#[0-9a-f]{6}$/i.test(value)) return value.toLowerCase();
    if (/^#[0-9a-f]{3}$/i.test(value)) return `#${[...value.slice(1)].map((c) => c + c).join("")}`.toLowerCase();
    return null;
  }

  function widgetPreview(a) {
    const title = h("strong", { class: "wp-title" });
    const subtitle = h("span", { class: "wp-subtitle" });
    const head = h("div", { class: "wp-head" }, h("span", { class: "wp-avatar", "aria-hidden": "true", text: "AI" }), h("div", { class: "wp-titles" }, title, subtitle));
    const bot = h("div", { class: "wp-bubble wp-bot", text: a.greeting || "Hi! How can I help you today?" });
    const user = h("div", { class: "wp-bubble wp-user", text: "Can I talk to a person?" });
    const back = h("span", { class: "wp-back", role: "presentation" });
    const input = h("span", { class: "wp-input" });
    const send = h("span", { class: "wp-send", "aria-hidden": "true", text: "➤" });
    const launcher = h("span", { class: "wp-launcher", "data-testid": "widget-preview-launcher" }, icon("chat"));
    const launcherLabel = h("span", { class: "wp-launcher-label" });
    const el = h(
      "figure",
      { class: "wp", "data-testid": "widget-preview", "aria-labelledby": "preview-title" },
      h("div", { class: "wp-panel" }, head, h("div", { class: "wp-body" }, bot, user, h("div", { class: "wp-system", text: "Connecting you with our team…" }), back), h("div", { class: "wp-foot" }, input, send)),
      h("div", { class: "wp-launcher-row" }, launcherLabel, launcher),
    );
    return {
      el,
      update(v) {
        const primary = expandHex(v.primary_color || "") || WIDGET_DEFAULTS.primary_color;
        const text = expandHex(v.text_color || "") || WIDGET_DEFAULTS.text_color;
        el.style.setProperty("--wp-primary", primary);
        el.style.setProperty("--wp-text", text);
        el.dataset.primary = primary;
        title.textContent = v.title || a.name;
        subtitle.textContent = v.subtitle || "";
        subtitle.hidden = !v.subtitle;
        back.textContent = v.back_to_ai_label || WIDGET_DEFAULTS.back_to_ai_label;
        input.textContent = v.placeholder || WIDGET_DEFAULTS.placeholder;
        launcherLabel.textContent = v.launcher_label || WIDGET_DEFAULTS.launcher_label;
        launcher.title = launcherLabel.textContent;
      },
    };
  }

  // ---------------------------------------------------------------- 4. team
  async function renderTeam(a) {
    const [workspaces, members] = await Promise.all([api("/api/v1/workspaces"), api("/api/v1/members")]);
    const workspace = (workspaces || []).find((w) => w.id === a.workspace_id);
    const section = h("section", { class: "settings-section" }, sectionHead("Team", "Who answers in the built-in inbox, their role and limits, and who gets new tickets."));
    if (workspace) section.append(assignmentCard(workspace));
    const list = h("ul", { class: "members", "data-testid": "members" }, (members || []).map((m) => memberRow(m)));
    const empty = h("p", { class: "muted", text: "No members yet.", hidden: list.childElementCount > 0 });
    section.append(
      h(
        "div",
        { class: "card" },
        h("h2", { class: "card-heading", text: "Members" }),
        h("p", { class: "muted small", text: "Away members get no new tickets. A cap limits the open tickets automatic assignment gives someone (0: none; empty: no cap). The picture shows beside their replies in the widget. Admins also change these settings." }),
        empty,
        list,
      ),
    );
    if (workspace) {
      section.append(
        inviteCard(workspace, (m) => {
          list.append(memberRow(m));
          empty.hidden = true;
        }),
      );
    }
    return section;
  }

  // A password the server generated: shown this once, with a Copy button, until "Done".
  function passwordPanel(title, m, password, testid) {
    const done = h("button", { class: "btn btn-sm", type: "button", "data-testid": `${testid}-done`, text: "Done" });
    const panel = h(
      "div",
      { class: "secret-panel", role: "alert", "data-testid": testid },
      h("strong", { text: title }),
      h("p", { class: "secret-warning", text: "Copy it now: it will not be shown again." }),
      h("p", { class: "small", text: `${m.name} signs in at ${location.origin}/inbox with ${m.email} and this password.` }),
      copyField(`Password of ${m.name}`, password, `${testid}-value`),
      h("div", { class: "form-actions" }, done),
    );
    done.addEventListener("click", () => panel.remove());
    return panel;
  }

  // Shown in place of a button that changes something at once: says what it does, asks again.
  function confirmStep(slot, { question, confirm, testid, onConfirm, returnTo }) {
    const yes = h("button", { class: "btn btn-sm btn-danger", type: "button", "data-testid": `${testid}-confirm`, text: confirm });
    const no = h("button", { class: "btn btn-sm btn-ghost", type: "button", text: "Cancel" });
    const box = h("div", { class: "confirm-step", role: "group", "aria-label": question }, h("span", { class: "small", text: question }), yes, no);
    const close = () => {
      box.remove();
      if (returnTo) returnTo.focus();
    };
    no.addEventListener("click", close);
    box.addEventListener("keydown", (e) => {
      if (e.key === "Escape") close();
    });
    // Done or refused, the question goes; the focus stays where `onConfirm` put it (the new
    // password, the refusal), else goes back to the button that asked.
    yes.addEventListener("click", async () => {
      busy([yes, no], true, "Working…");
      await onConfirm();
      const lost = box.contains(document.activeElement);
      box.remove();
      if (lost && returnTo && returnTo.isConnected) returnTo.focus();
    });
    slot.replaceChildren(box);
    yes.focus();
  }

  function inviteCard(workspace, added) {
    const formError = formErrorBox("invite-error");
    const reg = newRegistry(formError);
    const name = h("input", { class: "input", type: "text", maxlength: 200, autocomplete: "off", "data-testid": "invite-name" });
    const email = h("input", { class: "input", type: "email", maxlength: 320, autocomplete: "off", spellcheck: "false", "data-testid": "invite-email" });
    const role = roleSelect("agent", "invite-role");
    const submit = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "invite-submit", text: "Invite" });
    const slot = h("div", { class: "form-slot" });
    const form = h(
      "form",
      { class: "card invite-form", novalidate: true, "data-testid": "invite-form", "aria-labelledby": "invite-title" },
      h("h2", { class: "card-heading", id: "invite-title", text: "Invite a member" }),
      h("p", { class: "muted small", text: "A password is made for them and shown to you once, to hand over. They can answer tickets at once." }),
      h(
        "div",
        { class: "form-grid invite-grid" },
        field(reg, "name", { label: "Name", control: name, required: true, testid: "invite-name" }),
        field(reg, "email", { label: "Email", control: email, required: true, testid: "invite-email" }),
        field(reg, "role", { label: "Role", help: "Admins also open Settings.", control: role, testid: "invite-role" }),
      ),
      formError,
      h("div", { class: "form-actions" }, submit),
      slot,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(reg);
      busy([submit], true, "Inviting…");
      try {
        const body = { name: name.value.trim(), email: email.value.trim(), role: role.value };
        const m = await api(`/api/v1/workspaces/${enc(workspace.id)}/members`, { method: "POST", body });
        added(m);
        name.value = "";
        email.value = "";
        slot.replaceChildren(passwordPanel(`${m.name} is invited. Their password:`, m, m.password, "invite-password"));
        slot.querySelector("[data-testid=invite-password-value-copy]").focus();
      } catch (ex) {
        if (ex.status !== 401) showErrors(reg, ex);
      } finally {
        busy([submit], false);
      }
    });
    return form;
  }

  function roleSelect(value, testid) {
    const select = h("select", { class: "input", "data-testid": testid }, h("option", { value: "agent", text: "Agent" }), h("option", { value: "admin", text: "Admin" }));
    select.value = value;
    return select;
  }

  function assignmentCard(workspace) {
    const name = uid("assign");
    const formError = formErrorBox("assignment-error");
    const group = h(
      "fieldset",
      { class: "card fieldset", "data-testid": "assignment" },
      h("legend", { text: "How new tickets are assigned" }),
      h(
        "div",
        { class: "radio-cards" },
        ASSIGNMENT.map(([value, label, help]) => {
          const id = uid("r");
          const radio = h("input", { type: "radio", name, id, value, "data-testid": `assignment-${value}`, "aria-describedby": `${id}-help` });
          radio.checked = workspace.assignment === value;
          return h("label", { class: "radio-card", for: id }, radio, h("span", { class: "radio-card-text" }, h("strong", { text: label }), h("span", { id: `${id}-help`, class: "muted small", text: help })));
        }),
      ),
      formError,
    );
    group.addEventListener("change", async (e) => {
      const value = e.target.value;
      const before = workspace.assignment;
      formError.hidden = true;
      try {
        const saved = await api(`/api/v1/workspaces/${enc(workspace.id)}`, { method: "PATCH", body: { assignment: value } });
        workspace.assignment = saved.assignment;
        toast(`New tickets: ${ASSIGNMENT.find((x) => x[0] === saved.assignment)[1].toLowerCase()}.`, "ok");
      } catch (ex) {
        for (const r of group.querySelectorAll("input[type=radio]")) r.checked = r.value === before;
        if (ex.status !== 401) {
          formError.textContent = ex.message;
          formError.hidden = false;
        }
      }
    });
    return group;
  }

  function memberRow(m) {
    const formError = formErrorBox(null);
    const reg = newRegistry(formError);
    const role = roleSelect(m.role, "member-role");
    const away = h("input", { type: "checkbox", class: "checkbox", "data-testid": "member-away" });
    away.checked = !!m.away;
    const cap = h("input", { class: "input num", type: "number", min: "0", max: "10000", step: "1", placeholder: "No cap", "data-testid": "member-cap" });
    cap.value = m.max_open_tickets === null || m.max_open_tickets === undefined ? "" : String(m.max_open_tickets);
    const avatarUrl = h("input", { class: "input", type: "url", placeholder: "https://…/photo.png", "data-testid": "member-avatar" });
    avatarUrl.value = m.avatar_url || "";
    const save = h("button", { class: "btn btn-sm", type: "submit", disabled: true, "data-testid": "member-save", text: "Save" });
    let pic = avatar(m.name, null, m.avatar_url);
    const roleBadge = h("span", { class: "badge badge-more", "data-testid": "member-role-badge" });
    const stateBadge = h("span", { class: "badge badge-failing", "data-testid": "member-disabled", text: "Disabled" });
    const form = h(
      "form",
      { class: "member-form", novalidate: true, "aria-label": `Settings of ${m.name}` },
      field(reg, "role", { label: "Role", control: role, testid: "member-role" }),
      field(reg, "away", { label: "Away", control: away, testid: "member-away" }),
      field(reg, "max_open_tickets", { label: "Open ticket cap", control: cap, testid: "member-cap" }),
      field(reg, "avatar_url", { label: "Picture URL", control: avatarUrl, testid: "member-avatar", wide: true }),
      h("div", { class: "member-save" }, save),
    );
    const dirty = () => {
      save.disabled = false;
    };
    form.addEventListener("input", dirty);
    form.addEventListener("change", dirty);

    const accessError = formErrorBox("member-access-error");
    const reset = h("button", { class: "btn btn-sm", type: "button", "data-testid": "member-reset", text: "Reset password" });
    const toggle = h("button", { class: "btn btn-sm", type: "button", "data-testid": "member-toggle" });
    const confirmSlot = h("div", { class: "form-slot" });
    const panelSlot = h("div", { class: "form-slot" });
    const access = h("div", { class: "member-access" }, h("div", { class: "member-access-buttons" }, reset, toggle), confirmSlot, accessError, panelSlot);

    function draw() {
      roleBadge.textContent = m.role;
      stateBadge.hidden = !m.disabled;
      toggle.textContent = m.disabled ? "Enable" : "Disable";
      row.classList.toggle("is-disabled", !!m.disabled);
      row.dataset.disabled = String(!!m.disabled);
    }
    const refused = (ex) => {
      if (ex.status === 401) return;
      // "disabled: the workspace needs at least one enabled admin": the button says what.
      accessError.textContent = ex.message.replace(/^(disabled|password): /, "");
      accessError.hidden = false;
      accessError.focus();
    };

    reset.addEventListener("click", () => {
      accessError.hidden = true;
      confirmStep(confirmSlot, {
        question: `Give ${m.name} a new password? They are signed out everywhere.`,
        confirm: "Reset password",
        testid: "member-reset",
        returnTo: reset,
        onConfirm: async () => {
          try {
            const done = await api(`/api/v1/members/${enc(m.id)}/password`, { method: "POST", body: {} });
            panelSlot.replaceChildren(passwordPanel(`${m.name}'s new password:`, m, done.password, "reset-password"));
            panelSlot.querySelector("[data-testid=reset-password-value-copy]").focus();
          } catch (ex) {
            refused(ex);
          }
        },
      });
    });
    toggle.addEventListener("click", () => {
      accessError.hidden = true;
      const disabling = !m.disabled;
      const change = async () => {
        try {
          Object.assign(m, await api(`/api/v1/members/${enc(m.id)}`, { method: "PATCH", body: { disabled: disabling } }));
          draw();
          toast(disabling ? `${m.name} is disabled: signed out, and their open tickets are unassigned.` : `${m.name} can sign in again.`, "ok");
          toggle.focus();
        } catch (ex) {
          refused(ex);
        }
      };
      if (!disabling) {
        change();
        return;
      }
      confirmStep(confirmSlot, {
        question: `Disable ${m.name}? They cannot sign in, are signed out now, and their open tickets go back to Unassigned.`,
        confirm: "Disable",
        testid: "member-disable",
        returnTo: toggle,
        onConfirm: change,
      });
    });

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(reg);
      const body = {};
      if (role.value !== m.role) body.role = role.value;
      if (away.checked !== !!m.away) body.away = away.checked;
      const capValue = cap.value.trim() === "" ? null : Number(cap.value);
      if (capValue !== (m.max_open_tickets ?? null)) body.max_open_tickets = capValue;
      const url = avatarUrl.value.trim() || null;
      if (url !== (m.avatar_url || null)) body.avatar_url = url;
      if (!Object.keys(body).length) {
        save.disabled = true;
        return;
      }
      busy([save], true, "Saving…");
      try {
        const saved = await api(`/api/v1/members/${enc(m.id)}`, { method: "PATCH", body });
        Object.assign(m, saved);
        const next = avatar(m.name, null, m.avatar_url);
        pic.replaceWith(next);
        pic = next;
        draw();
        toast(`${m.name} is updated.`, "ok");
        busy([save], false);
        save.disabled = true;
      } catch (ex) {
        busy([save], false);
        if (ex.status !== 401) showErrors(reg, ex);
      }
    });
    const you = state.me && state.me.id === m.id ? h("span", { class: "muted small", text: " (you)" }) : null;
    const row = h(
      "li",
      { class: "member", "data-testid": "member-row", "data-member": m.id, "data-email": m.email },
      h("div", { class: "member-who" }, pic, h("div", {}, h("strong", { text: m.name }), you, h("span", { class: "muted small block", text: m.email || "" }), roleBadge, " ", stateBadge)),
      h("div", { class: "member-edit" }, form, formError, access),
    );
    draw();
    return row;
  }

  // ---------------------------------------------------------------- 5. knowledge base
  // The whole list is edited here and sent with one PUT; the limits come with the page.
  async function renderKnowledge(a) {
    const stored = (await api(`/api/v1/agents/${enc(a.id)}/knowledge`)) || [];
    const limits = limitsFrom(app.dataset);
    let entries = stored.map(({ question, answer }) => ({ question, answer }));
    let changed = false;
    const formError = formErrorBox("knowledge-error");
    const reg = newRegistry(formError);
    const list = h("ol", { class: "kb-list", "data-testid": "knowledge-list" });
    const count = h("span", { class: "kb-count", "data-testid": "knowledge-count", "aria-live": "polite" });
    const unsaved = h("span", { class: "muted small", "data-testid": "knowledge-unsaved", text: "Unsaved changes", hidden: true });
    const add = h("button", { class: "btn btn-sm", type: "button", "data-testid": "knowledge-add", text: "Add an entry" });
    const file = h("input", { type: "file", accept: ".csv,text/csv", class: "sr-only", tabindex: "-1", "aria-hidden": "true", "data-testid": "knowledge-file" });
    const pick = h("button", { class: "btn btn-sm", type: "button", "data-testid": "knowledge-import", text: "Import CSV" });
    const replace = h("input", { type: "checkbox", class: "checkbox", id: uid("kb-replace"), "data-testid": "knowledge-replace" });
    const summary = h("p", { class: "kb-summary", role: "status", "data-testid": "knowledge-import-summary", hidden: true });
    const save = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "knowledge-save", text: "Save knowledge base" });
    const empty = h("p", { class: "muted", text: "No entries yet: add one, or import a CSV file." });

    // Said aloud when it changes (aria-live), so set only then, not at every keystroke.
    function showCount() {
      const text = `${entries.length} of ${limits.entries} entries`;
      if (count.textContent !== text) count.textContent = text;
      count.classList.toggle("over", entries.length > limits.entries);
    }

    function touch() {
      changed = true;
      unsaved.hidden = false;
      showCount();
    }

    function entryItem(entry, index) {
      const question = h("textarea", { class: "input", rows: 2, maxlength: limits.question, "data-testid": "knowledge-question" });
      question.value = entry.question;
      const answer = h("textarea", { class: "input", rows: 3, maxlength: limits.answer, "data-testid": "knowledge-answer" });
      answer.value = entry.answer;
      question.addEventListener("input", () => {
        entry.question = question.value;
        touch();
      });
      answer.addEventListener("input", () => {
        entry.answer = answer.value;
        touch();
      });
      const remove = h("button", { class: "btn btn-sm btn-ghost", type: "button", "aria-label": `Delete entry ${index + 1}`, "data-testid": "knowledge-delete", text: "Delete" });
      remove.addEventListener("click", () => {
        entries.splice(index, 1);
        touch();
        draw();
        const next = list.querySelectorAll("[data-testid=knowledge-question]")[Math.min(index, entries.length - 1)];
        (next || add).focus();
      });
      const number = uid("kb-entry");
      return h(
        "li",
        { class: "kb-entry", "data-testid": "knowledge-entry" },
        h(
          "div",
          { class: "kb-entry-body", role: "group", "aria-labelledby": number },
          h("div", { class: "kb-entry-head" }, h("span", { class: "kb-number", id: number, text: `Entry ${index + 1}` }), remove),
          field(reg, `knowledge[${index}].question`, { label: "Question", control: question, required: true, testid: `knowledge-${index}-question` }),
          field(reg, `knowledge[${index}].answer`, { label: "Answer", control: answer, required: true, testid: `knowledge-${index}-answer` }),
        ),
      );
    }

    // The entries' fields are made anew; the list's own field ("knowledge": how many) stays.
    function draw() {
      for (const key of [...reg.fields.keys()]) if (key !== "knowledge") reg.fields.delete(key);
      list.replaceChildren(...entries.map(entryItem));
      empty.hidden = entries.length > 0;
      showCount();
    }

    add.addEventListener("click", () => {
      entries.push({ question: "", answer: "" });
      touch();
      draw();
      const items = list.querySelectorAll("[data-testid=knowledge-question]");
      items[items.length - 1].focus();
    });
    pick.addEventListener("click", () => file.click());
    file.addEventListener("change", async () => {
      const chosen = file.files && file.files[0];
      file.value = "";
      if (!chosen) return;
      summary.classList.remove("bad");
      try {
        const read = readKnowledgeCsv(await chosen.text(), limits);
        entries = replace.checked ? read.entries : [...entries, ...read.entries];
        summary.textContent = `${chosen.name}: ${importSummary(read)}${read.entries.length ? " Save to keep them." : ""}`;
        summary.classList.toggle("bad", read.refused.length > 0);
        touch();
        draw();
      } catch (ex) {
        if (!(ex instanceof CsvError)) throw ex;
        summary.textContent = `${chosen.name} was not imported: ${ex.message}`;
        summary.classList.add("bad");
      }
      summary.hidden = false;
    });

    const form = h(
      "form",
      { class: "card kb-form", novalidate: true, "data-testid": "knowledge-form", "aria-label": `Knowledge base of ${a.name}` },
      field(reg, "knowledge", {
        label: "Entries",
        help: h("span", {}, "A CSV file's first row names its columns ", h("code", { text: "question" }), " and ", h("code", { text: "answer" }), "; a cell with commas or line breaks goes in double quotes."),
        control: h("div", { class: "kb-tools" }, count, add, pick, file, h("label", { class: "check small", for: replace.id }, replace, h("span", { text: "Import replaces the list" }))),
        group: true,
        testid: "knowledge-entries",
      }),
      summary,
      empty,
      list,
      formError,
      h("div", { class: "form-actions sticky-actions" }, save, unsaved),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(reg);
      const problems = checkKnowledge(entries, limits);
      if (problems.length) {
        showErrors(reg, new ApiError(422, "", { detail: problems.map((p) => ({ loc: ["body", p.path], msg: p.message })) }));
        return;
      }
      busy([save], true, "Saving…");
      try {
        const body = entries.map((x) => ({ question: x.question.trim(), answer: x.answer.trim() }));
        const saved = await api(`/api/v1/agents/${enc(a.id)}/knowledge`, { method: "PUT", body });
        entries = saved.map(({ question, answer }) => ({ question, answer }));
        changed = false;
        unsaved.hidden = true;
        draw();
        toast(`The knowledge base is saved: ${entries.length} entries. The AI answers from them in a moment, once they are indexed.`, "ok");
      } catch (ex) {
        if (ex.status !== 401) showErrors(reg, knowledgeErrors(ex));
      } finally {
        busy([save], false);
      }
    });
    state.unsaved = () => changed && form.isConnected;
    draw();
    return h(
      "section",
      { class: "settings-section" },
      sectionHead("Knowledge base", `The questions ${a.name} answers, and its answers. At most ${limits.entries} entries; a question has at most ${limits.question} characters, an answer ${limits.answer}.`),
      form,
    );
  }

  // The request's own validation names a body item ("3.answer"), the service the field
  // ("knowledge[3].answer"): both point at the same entry.
  function knowledgeErrors(ex) {
    const items = ex.data && Array.isArray(ex.data.detail) ? ex.data.detail : null;
    if (!items) return ex;
    const detail = items.map((item) => ({ ...item, loc: ["body", knowledgePath(errorPath(item))] }));
    return new ApiError(ex.status, ex.message, { ...ex.data, detail });
  }

  // ---------------------------------------------------------------- 6. canned replies
  // The workspace's replies; members insert them from the inbox's composer.
  async function renderCanned(a) {
    const replies = (await api(`/api/v1/canned-replies?workspace_id=${enc(a.workspace_id)}`)) || [];
    const list = h("ul", { class: "canned-list", "data-testid": "canned-list" });
    const empty = h("p", { class: "muted", "data-testid": "canned-empty", text: "No canned replies yet." });
    const redraw = () => {
      replies.sort((x, y) => x.title.localeCompare(y.title));
      list.replaceChildren(...replies.map((r) => cannedItem(r)));
      empty.hidden = replies.length > 0;
    };
    const slotNew = h("div", {});
    function cannedItem(reply) {
      const edit = h("button", { class: "btn btn-sm", type: "button", "aria-expanded": "false", "aria-label": `Edit ${reply.title}`, "data-testid": "canned-edit", text: "Edit" });
      const remove = h("button", { class: "btn btn-sm btn-ghost", type: "button", "aria-label": `Delete ${reply.title}`, "data-testid": "canned-delete", text: "Delete" });
      const slot = h("div", { class: "form-slot" });
      const view = h("div", { class: "canned-view" }, h("strong", { class: "canned-title", "data-testid": "canned-title", text: reply.title }), h("p", { class: "canned-body", "data-testid": "canned-body", text: reply.body }));
      const item = h("li", { class: "canned-item", "data-testid": "canned-item", "data-id": reply.id }, h("div", { class: "canned-row" }, view, h("div", { class: "canned-buttons" }, edit, remove)), slot);
      edit.addEventListener("click", () => {
        const open = !slot.childElementCount;
        edit.setAttribute("aria-expanded", String(open));
        if (!open) {
          slot.replaceChildren();
          return;
        }
        slot.replaceChildren(
          cannedForm(a, reply, {
            onSaved: (saved) => {
              Object.assign(reply, saved);
              redraw();
              list.querySelector(`[data-id="${CSS.escape(reply.id)}"] [data-testid=canned-edit]`).focus();
            },
            onCancel: () => {
              slot.replaceChildren();
              edit.setAttribute("aria-expanded", "false");
              edit.focus();
            },
          }),
        );
        slot.querySelector("input").focus();
      });
      remove.addEventListener("click", () =>
        confirmStep(slot, {
          question: `Delete “${reply.title}”? Members can no longer insert it.`,
          confirm: "Delete",
          testid: "canned-delete",
          returnTo: remove,
          onConfirm: async () => {
            try {
              await api(`/api/v1/canned-replies/${enc(reply.id)}`, { method: "DELETE" });
              const at = replies.indexOf(reply);
              replies.splice(at, 1);
              redraw();
              const next = list.querySelectorAll("[data-testid=canned-edit]")[Math.min(at, replies.length - 1)];
              (next || slotNew.querySelector("input")).focus();
              toast(`“${reply.title}” is deleted.`, "ok");
            } catch (ex) {
              if (ex.status !== 401) toast(ex.message);
            }
          },
        }),
      );
      return item;
    }
    const newForm = () =>
      slotNew.replaceChildren(
        cannedForm(a, null, {
          onSaved: (saved) => {
            replies.push(saved);
            redraw();
            newForm();
            toast(`“${saved.title}” is saved.`, "ok");
          },
        }),
      );
    newForm();
    redraw();
    return h(
      "section",
      { class: "settings-section" },
      sectionHead("Canned replies", "Answers your team inserts in one click from the inbox's reply box, filled in for each ticket."),
      h("div", { class: "card" }, h("h2", { class: "card-heading", text: "Replies" }), empty, list),
      h("div", { class: "card" }, h("h2", { class: "card-heading", text: "New reply" }), slotNew),
    );
  }

  // The variables a reply may name, each a button that inserts it at the reply's cursor.
  function cannedVariables(body) {
    const id = uid("vars");
    return h(
      "div",
      { class: "canned-vars", role: "group", "aria-labelledby": id },
      h("span", { class: "field-help", id, text: "Variables, filled in for each ticket; a button inserts one at the cursor:" }),
      h(
        "ul",
        { class: "canned-var-list" },
        CANNED_VARIABLES.map(([name, meaning]) => {
          const insert = h("button", { class: "btn btn-sm btn-ghost mono", type: "button", "aria-label": `Insert ${name}, ${meaning}`, text: name });
          insert.addEventListener("click", () => {
            body.setRangeText(name, body.selectionStart, body.selectionEnd, "end");
            body.dispatchEvent(new Event("input", { bubbles: true }));
            body.focus();
          });
          return h("li", {}, insert, h("span", { class: "field-help", text: meaning }));
        }),
      ),
    );
  }

  function cannedForm(a, reply, { onSaved, onCancel }) {
    const formError = formErrorBox("canned-error");
    const reg = newRegistry(formError);
    const title = h("input", { class: "input", type: "text", maxlength: CANNED_MAX_TITLE, autocomplete: "off", "data-testid": "canned-title-input" });
    title.value = reply ? reply.title : "";
    const body = h("textarea", { class: "input", rows: 4, maxlength: CANNED_MAX_BODY, "data-testid": "canned-body-input", placeholder: "Hi {first_name}, …" });
    body.value = reply ? reply.body : "";
    const submit = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "canned-save", text: reply ? "Save reply" : "Add reply" });
    const cancel = onCancel ? h("button", { class: "btn btn-ghost", type: "button", text: "Cancel", onclick: onCancel }) : null;
    const form = h(
      "form",
      { class: "canned-form", novalidate: true, "data-testid": "canned-form", "aria-label": reply ? `Edit ${reply.title}` : "New canned reply" },
      field(reg, "title", { label: "Title", help: `What members pick it by; unique in the workspace, at most ${CANNED_MAX_TITLE} characters.`, control: title, required: true, testid: "canned-title-input" }),
      field(reg, "body", { label: "Reply", help: `At most ${CANNED_MAX_BODY} characters.`, control: body, required: true, testid: "canned-body-input" }),
      cannedVariables(body),
      formError,
      h("div", { class: "form-actions" }, submit, cancel),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(reg);
      busy([submit], true, "Saving…");
      const sent = { title: title.value.trim(), body: body.value.trim() };
      try {
        const saved = reply
          ? await api(`/api/v1/canned-replies/${enc(reply.id)}`, { method: "PUT", body: sent })
          : await api(`/api/v1/workspaces/${enc(a.workspace_id)}/canned-replies`, { method: "POST", body: sent });
        busy([submit], false);
        onSaved(saved);
      } catch (ex) {
        busy([submit], false);
        if (ex.status !== 401) showErrors(reg, ex);
      }
    });
    return form;
  }

  // ---------------------------------------------------------------- 7. channels with an outside API
  // One tab per channel: its words and connect form come with GET /api/v1/channels, and its
  // connection lives at /api/v1/agents/{id}/channels/{channel}.
  function connectionPath(a, sender) {
    return `/api/v1/agents/${enc(a.id)}/channels/${enc(sender.channel)}`;
  }

  async function renderChannel(a, sender) {
    const { channel, title } = sender;
    const connection = await api(connectionPath(a, sender)).catch((e) => {
      if (e.status === 404) return null;
      throw e;
    });
    const section = h("section", { class: "settings-section" }, sectionHead(title, sender.lead));
    const slot = h("div", { class: "form-slot" });
    if (connection) {
      const reconnect = h("button", { class: "btn btn-sm", type: "button", "aria-expanded": "false", "data-testid": `${channel}-reconnect`, text: "Reconnect" });
      const card = h(
        "article",
        { class: "card integ-card", "data-testid": `${channel}-connected` },
        h(
          "div",
          { class: "integ-head" },
          platformMark(title),
          h("div", { class: "integ-title" }, h("h3", { text: connection.name }), h("p", { class: "muted small", text: connection.summary })),
          h("span", { class: "badge badge-solved", text: "Connected" }),
          reconnect,
        ),
        copyField("Callback URL", connection.webhook_url, `${channel}-webhook-url`),
        h("details", { class: "steps-box", open: true }, h("summary", { text: sender.finish }), h("ol", { class: "setup-steps", "data-testid": `${channel}-steps` }, (connection.webhook_setup || []).map((s) => h("li", {}, helpText(s))))),
        slot,
      );
      reconnect.addEventListener("click", () => {
        const open = !slot.childElementCount;
        slot.replaceChildren(open ? channelForm(a, sender, connection) : "");
        reconnect.setAttribute("aria-expanded", String(open));
      });
      section.append(card);
      // Connecting adds the channel to the agent, not to its actions: say so until one covers it.
      const actions = (await api(`/api/v1/agents/${enc(a.id)}/actions`)) || [];
      if (!actions.some((x) => x.enabled && x.channels.includes(channel))) {
        section.append(
          h("p", { class: "notice", "data-testid": `${channel}-tip` }, `No enabled escalate action covers ${title} yet, so users there cannot reach a person. `, h("a", { href: "#action", text: `Add ${title} to the action's channels` }), "."),
        );
      }
    } else {
      slot.append(channelForm(a, sender, null));
      section.append(h("div", { class: "card" }, h("h2", { class: "card-heading", text: sender.connect }), h("p", { class: "muted small", text: sender.checked }), slot));
    }
    return section;
  }

  function channelForm(a, sender, connection) {
    const { channel, title } = sender;
    const formError = formErrorBox(`${channel}-error`);
    const sf = schemaForm(sender.form, { values: connection ? connection.values : {}, testid: channel, formError });
    const submit = h("button", { class: "btn btn-primary", type: "submit", "data-testid": `${channel}-submit`, text: connection ? "Reconnect" : `Connect ${title}` });
    const form = h("form", { class: "connect-form", novalidate: true, "data-testid": `${channel}-form`, "aria-label": `Connect ${title}` }, sf.el, formError, h("div", { class: "form-actions" }, submit));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(sf.reg);
      busy([submit], true, "Checking…");
      try {
        await api(connectionPath(a, sender), { method: "PUT", body: sf.values().send });
        await refreshAgents(); // connecting adds the channel to the agent's channels
        toast(`${title} is connected. ${sender.finish}.`, "ok");
        renderSection();
      } catch (ex) {
        busy([submit], false);
        if (ex.status !== 401) showErrors(sf.reg, ex);
      }
    });
    return form;
  }

  // ---------------------------------------------------------------- boot
  // Leaving with an edited, unsaved knowledge base asks first.
  window.addEventListener("beforeunload", (e) => {
    if (state.unsaved && state.unsaved()) e.preventDefault();
  });

  function sectionFromHash() {
    const key = location.hash.replace(/^#/, "");
    return sections().some((s) => s[0] === key) ? key : "integrations";
  }

  window.addEventListener("hashchange", () => {
    if (!state.me || !ui.main) return;
    const next = sectionFromHash();
    if (next === state.section) return;
    if (!mayLeave()) {
      history.replaceState(null, "", `${location.pathname}${location.search}#${state.section}`);
      return;
    }
    state.section = next;
    state.openForm = null;
    renderSection().then(() => ui.main.focus({ preventScroll: true }));
  });

  async function boot() {
    state.token = getToken() || state.token;
    if (!state.token) {
      renderLogin();
      return;
    }
    try {
      state.me = await api("/api/v1/me", { auth: true });
    } catch (e) {
      state.me = null;
      if (e.status === 401) setToken(null);
      renderLogin(e.status === 401 ? null : e.message);
      return;
    }
    if (state.me.role !== "admin") {
      renderNotAdmin();
      return;
    }
    try {
      let words;
      [state.agents, state.platforms, state.senders, words] = await Promise.all([
        api("/api/v1/agents"),
        api("/api/v1/platforms"),
        api("/api/v1/channels"),
        api("/api/v1/vocabulary", { auth: false }),
      ]);
      CHANNELS = words.channels;
    } catch (e) {
      if (e.status === 403) renderNotAdmin();
      else if (e.status !== 401) renderLogin(e.message);
      return;
    }
    const wanted = new URL(location.href).searchParams.get("agent");
    let remembered = null;
    try {
      remembered = localStorage.getItem(AGENT_KEY);
    } catch {
      remembered = null;
    }
    const ids = state.agents.map((x) => x.id);
    state.agentId = [wanted, remembered].find((id) => id && ids.includes(id)) || ids[0] || null;
    state.section = sectionFromHash();
    renderShell();
    await renderSection();
  }

  boot().catch(() => {});
})();
