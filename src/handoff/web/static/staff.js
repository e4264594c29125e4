/*!
 * handoff staff pages — what the inbox and the settings page share: the DOM builder, icons,
 * avatars, the signed-in token, JSON requests with readable errors, and toasts. An ES module;
 * the pure parts live in staff/errors.js and staff/format.js and are re-exported here.
 *
 * Security: text is always inserted with textContent (see `h`), never as markup. The only
 * markup is the constant icons below.
 */
import { ApiError, detailOf, fallbackMessage } from "./staff/errors.js";
import { emailPieces, hue, initials, linkPieces, safeHttpUrl } from "./staff/format.js";

export { ApiError, detailOf, errorMessage, errorPath } from "./staff/errors.js";
export * from "./staff/format.js";

const TOKEN_KEY = "handoff:inbox:token";
let memoryToken = null; // when the browser blocks storage

export function h(tag, attrs, ...children) {
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

export const ICONS = {
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
  bell:
    '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10.3 21a1.94 1.94 0 0 0 3.4 0"/></svg>',
  logout:
    '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><path fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M15 4h3a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-3M10 17l-5-5 5-5M5 12h11"/></svg>',
  chat:
    '<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 3C6.5 3 2 6.8 2 11.5c0 2.4 1.2 4.6 3.1 6.1L4 21.5l4.6-2.2c1.1.3 2.2.5 3.4.5 5.5 0 10-3.8 10-8.5S17.5 3 12 3z"/></svg>',
};

export function icon(name, cls) {
  const span = h("span", { class: cls || "icon" });
  span.innerHTML = ICONS[name]; // constant markup only
  return span;
}

// Initials on a stable colour, or the person's picture (http(s) URLs only).
export function avatar(name, cls, url) {
  const a = h("span", { class: `avatar ${cls || ""}`, "aria-hidden": "true", text: initials(name) });
  a.style.setProperty("--h", String(hue(name)));
  const src = safeHttpUrl(url);
  if (src) {
    const img = h("img", { src, alt: "", referrerpolicy: "no-referrer", loading: "lazy" });
    img.addEventListener("error", () => img.remove(), { once: true });
    a.append(img);
  }
  return a;
}

// Text with its http(s) URLs as links that open elsewhere.
export function richText(text) {
  const frag = document.createDocumentFragment();
  for (const piece of linkPieces(text)) {
    frag.append(
      piece.href
        ? h("a", { href: piece.href, target: "_blank", rel: "noopener noreferrer nofollow", text: piece.href })
        : document.createTextNode(piece.text),
    );
  }
  return frag;
}

// An email as text pieces with a line-break opportunity (<wbr>) between them.
export function breakableEmail(email) {
  return emailPieces(email).flatMap((piece, i) => (i ? [h("wbr"), piece] : [piece]));
}

export function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || memoryToken;
  } catch {
    return memoryToken;
  }
}

export function storeToken(t) {
  memoryToken = t;
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage blocked: keep it in memory */
  }
}

/** Send a JSON request; return the parsed answer or throw an ApiError with a readable message. */
export async function request(path, { method = "GET", body, token = null } = {}) {
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
  if (!res.ok) throw new ApiError(res.status, detailOf(data) || fallbackMessage(res.status), data);
  return data;
}

/** The sign-in card both staff pages open with: the logo, a title, a line under it, then `children`. */
export function loginCard(title, sub, ...children) {
  return h(
    "form",
    { class: "login-card", "data-testid": "login-form", "aria-labelledby": "login-title", novalidate: true },
    h("div", { class: "login-logo" }, icon("logo"), h("span", { text: "handoff" })),
    h("h1", { id: "login-title", text: title }),
    h("p", { class: "login-sub", text: sub }),
    ...children,
  );
}

/** Sign in with the card's email and password: the login answer, or null once `err` says why
 *  not (the button is given back, the password selected to be typed again). */
export async function signInWithPassword({ email, password, submit, err }) {
  const fail = (message) => {
    submit.disabled = false;
    submit.textContent = "Sign in";
    err.textContent = message;
    err.hidden = false;
    return null;
  };
  if (!email.value.trim() || !password.value) return fail("Enter your email and password.");
  submit.disabled = true;
  submit.textContent = "Signing in…";
  try {
    return await request("/api/v1/auth/login", {
      method: "POST",
      body: { email: email.value.trim(), password: password.value },
    });
  } catch (ex) {
    password.select();
    return fail([400, 401, 422].includes(ex.status) ? "Wrong email or password" : ex.message);
  }
}

export function toast(message, kind = "error") {
  const t = h("div", { class: `toast toast-${kind}`, "data-testid": "toast", role: kind === "error" ? "alert" : "status" }, message);
  const close = h("button", { class: "toast-close", type: "button", "aria-label": "Dismiss", text: "×" });
  close.addEventListener("click", () => t.remove());
  t.append(close);
  document.getElementById("toasts").append(t);
  setTimeout(() => t.classList.add("leaving"), 5200);
  setTimeout(() => t.remove(), 5600);
}
