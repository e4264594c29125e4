/*!
 * handoff inbox — the keyboard shortcuts: which key does what, and when a key press is one.
 * Pure (no DOM, no network), so the unit tests run it under Node.
 */

// What `?` lists, in that order: [keys shown, what they do, the action's name].
export const SHORTCUTS = [
  ["j", "Next ticket", "next"],
  ["k", "Previous ticket", "previous"],
  ["r", "Reply to the visitor", "reply"],
  ["n", "Write an internal note", "note"],
  ["c", "Insert a canned reply", "canned"],
  ["a", "Assign the ticket", "assign"],
  ["s", "Solve the ticket", "solve"],
  ["/", "Search tickets", "search"],
  ["?", "Show these shortcuts", "help"],
];

const ACTION_OF_KEY = new Map(SHORTCUTS.map(([key, , action]) => [key, action]));
const TYPING_TAGS = new Set(["INPUT", "TEXTAREA", "SELECT"]);

/**
 * The action a key press asks for, or null: none while the member types in a field, none
 * with Ctrl, Alt or the command key (those belong to the browser), none if already handled.
 */
export function shortcutFor({ key, target, ctrlKey, metaKey, altKey, defaultPrevented }) {
  if (defaultPrevented || ctrlKey || metaKey || altKey) return null;
  if (target && (TYPING_TAGS.has(target.tagName) || target.isContentEditable)) return null;
  return ACTION_OF_KEY.get(key) || null;
}
