/*!
 * handoff inbox — finding a canned reply as the member types, and putting its text into the
 * reply box. Pure (no DOM, no network), so the unit tests run it under Node.
 */

/**
 * The replies that match what is typed, best first: titles that start with it, then titles
 * that hold it, then texts that hold it. Case and accents do not matter; nothing typed: all.
 */
export function matchCanned(replies, query) {
  const wanted = fold(query);
  if (!wanted) return [...replies];
  const rank = (r) => {
    const title = fold(r.title);
    if (title.startsWith(wanted)) return 0;
    if (title.includes(wanted)) return 1;
    return fold(r.text ?? r.body).includes(wanted) ? 2 : null;
  };
  return replies
    .map((r, i) => ({ r, i, rank: rank(r) }))
    .filter((x) => x.rank !== null)
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map((x) => x.r);
}

/** What follows "/" when the reply box holds only "/" and a word: the picker opens on it. */
export function slashQuery(text) {
  const match = /^\/(\S*)$/.exec(String(text || ""));
  return match ? match[1] : null;
}

/**
 * The reply box's text with `insert` in place of the selection from `start` to `end`, and
 * where the caret goes after it. A "/word" that opened the picker is replaced whole.
 */
export function insertCanned(value, start, end, insert) {
  if (slashQuery(value) !== null) return { value: insert, caret: insert.length };
  const before = value.slice(0, start);
  const after = value.slice(end);
  return { value: before + insert + after, caret: before.length + insert.length };
}

function fold(text) {
  return String(text || "")
    .normalize("NFD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .trim();
}
