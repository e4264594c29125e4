/*!
 * handoff inbox — the member's alerts as the browser gives them: desktop notifications (with
 * the browser's permission) and a short chime made with the Web Audio API (no sound file).
 * The choice of each is kept in this browser. When to alert is decided in notify.js.
 */
import { notificationState } from "./notify.js";

const PREFS_KEY = "handoff.inbox.alerts";
const prefs = { notify: false, sound: false, ...readPrefs() };
let audio = null;

function readPrefs() {
  try {
    const saved = JSON.parse(localStorage.getItem(PREFS_KEY) || "{}");
    return { notify: saved.notify === true, sound: saved.sound === true };
  } catch {
    return {};
  }
}

function permission() {
  return typeof Notification === "function" ? Notification.permission : undefined;
}

/** What the alerts menu shows: { notify: "on" | "off" | "blocked" | "unsupported", sound }. */
export function alertsView() {
  return { notify: notificationState(permission(), prefs.notify), sound: prefs.sound };
}

/**
 * Switch notifications or the sound on or off (`change` holds either). Switching
 * notifications on asks the browser's permission the first time; returns what the menu shows.
 */
export async function changeAlerts(change) {
  if (change.notify && permission() === "default") await Notification.requestPermission();
  Object.assign(prefs, change);
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
  } catch {
    /* storage blocked: the choice lasts until the page closes */
  }
  if (change.sound) chime(); // let the member hear what they switched on
  return alertsView();
}

/**
 * Alert the member: the chime when the sound is on; a desktop notification when they are on
 * and the inbox is in the background (in front, the page's own toast and badges tell).
 * Clicking the notification brings the inbox forward and calls `onOpen`.
 */
export function raiseAlert(alert, onOpen) {
  if (!alert) return;
  if (prefs.sound) chime();
  if (alertsView().notify !== "on" || (!document.hidden && document.hasFocus())) return;
  const shown = new Notification(alert.title, { body: alert.body, tag: alert.tag });
  shown.addEventListener("click", () => {
    window.focus();
    onOpen();
    shown.close();
  });
}

function chime() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  audio = audio || new Context();
  audio.resume().catch(() => {});
  const start = audio.currentTime;
  const tone = audio.createOscillator();
  const volume = audio.createGain();
  tone.frequency.setValueAtTime(880, start);
  tone.frequency.setValueAtTime(1320, start + 0.12);
  volume.gain.setValueAtTime(0.0001, start);
  volume.gain.exponentialRampToValueAtTime(0.15, start + 0.02);
  volume.gain.exponentialRampToValueAtTime(0.0001, start + 0.35);
  tone.connect(volume).connect(audio.destination);
  tone.start(start);
  tone.stop(start + 0.36);
}
