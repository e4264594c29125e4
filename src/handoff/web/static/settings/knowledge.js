/*!
 * handoff settings — the knowledge base's client rules: reading a CSV file of questions and
 * answers, and the limits the API enforces (checked before sending, so an admin learns of a
 * long answer at the answer, not after the upload). Pure (no DOM, no network), so the unit
 * tests run it under Node.
 */

// The API's defaults (HANDOFF_KNOWLEDGE_MAX_*); the page reads the configured ones from its
// template, and the server's 422 stays the last word.
export const DEFAULT_LIMITS = { entries: 1000, question: 1000, answer: 5000 };

const LIMIT_ATTRIBUTES = { entries: "knowledgeMaxEntries", question: "knowledgeMaxQuestion", answer: "knowledgeMaxAnswer" };

/** The limits an element's data attributes give (data-knowledge-max-*), else the defaults. */
export function limitsFrom(dataset) {
  const limits = { ...DEFAULT_LIMITS };
  for (const [key, attribute] of Object.entries(LIMIT_ATTRIBUTES)) {
    const n = Number(dataset && dataset[attribute]);
    if (Number.isInteger(n) && n > 0) limits[key] = n;
  }
  return limits;
}

export class CsvError extends Error {}

/**
 * Split CSV text into records of fields (RFC 4180): fields in double quotes may hold commas,
 * line breaks and doubled quotes; records end at CRLF, LF or CR. A byte-order mark is dropped.
 * An unclosed quote throws a CsvError naming the record it opened in (the first is 1).
 */
export function parseCsv(text) {
  const src = String(text).replace(/^\uFEFF/, "");
  const records = [];
  let record = [];
  let fieldText = "";
  let quoted = false;
  let quoteOpenedIn = 0;
  let started = false; // the current record has begun (even with an empty quoted field)
  let i = 0;
  const endField = () => {
    record.push(fieldText);
    fieldText = "";
  };
  const endRecord = () => {
    endField();
    records.push(record);
    record = [];
    started = false;
  };
  while (i < src.length) {
    const c = src[i];
    started = true;
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') {
        fieldText += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else fieldText += c;
      i += 1;
      continue;
    }
    if (c === '"' && fieldText.trim() === "") {
      // A quote opens a quoted field only at its start (spaces before it are dropped).
      fieldText = "";
      quoted = true;
      quoteOpenedIn = records.length + 1;
    } else if (c === ",") {
      endField();
    } else if (c === "\r" || c === "\n") {
      endRecord();
      if (c === "\r" && src[i + 1] === "\n") i += 1;
    } else {
      fieldText += c;
    }
    i += 1;
  }
  if (quoted) throw new CsvError(`Row ${quoteOpenedIn} opens a quoted field that never closes.`);
  if (started) endRecord();
  return records;
}

function count(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

function tooLong(limit, length) {
  return `at most ${count(limit, "character")}; it has ${length}`;
}

/**
 * Read a knowledge base from CSV text whose first row names the columns `question` and
 * `answer` (in any order, other columns ignored). Returns `{ entries, refused, rows }`:
 * the entries to add, the rows refused with why (`{ row, reason }`, the header being row 1,
 * as a spreadsheet numbers them) and how many data rows were read. Blank rows are skipped.
 * A file that cannot be read at all throws a CsvError.
 */
export function readKnowledgeCsv(text, limits = DEFAULT_LIMITS) {
  const records = parseCsv(text);
  const header = (records[0] || []).map((name) => name.trim().toLowerCase());
  const q = header.indexOf("question");
  const a = header.indexOf("answer");
  if (q < 0 || a < 0) throw new CsvError('The first row must name the columns "question" and "answer".');
  const entries = [];
  const refused = [];
  let rows = 0;
  records.slice(1).forEach((record, index) => {
    const row = index + 2;
    if (record.every((cell) => cell.trim() === "")) return;
    rows += 1;
    const question = (record[q] || "").trim();
    const answer = (record[a] || "").trim();
    const reason = !question
      ? "the question is empty"
      : !answer
        ? "the answer is empty"
        : question.length > limits.question
          ? `the question is too long (${tooLong(limits.question, question.length)})`
          : answer.length > limits.answer
            ? `the answer is too long (${tooLong(limits.answer, answer.length)})`
            : null;
    if (reason) refused.push({ row, reason });
    else entries.push({ question, answer });
  });
  return { entries, refused, rows };
}

/** What an import tells the admin: rows read, entries added, each refused row and why. */
export function importSummary({ entries, refused, rows }) {
  const head = `Read ${count(rows, "row")}: ${count(entries.length, "entry", "entries")} added`;
  if (!refused.length) return `${head}.`;
  return `${head}, ${refused.length} refused (${refused.map((r) => `row ${r.row}: ${r.reason}`).join("; ")}).`;
}

/**
 * Check entries against the limits as the API would (texts trimmed): a list of
 * `{ path, message }`, each path as the API names it (`knowledge`, `knowledge[3].answer`).
 */
export function checkKnowledge(entries, limits = DEFAULT_LIMITS) {
  const problems = [];
  if (entries.length > limits.entries) {
    problems.push({ path: "knowledge", message: `At most ${count(limits.entries, "entry", "entries")}; the list has ${entries.length}. Delete some before saving.` });
  }
  entries.forEach((entry, index) => {
    for (const part of ["question", "answer"]) {
      const value = String(entry[part] || "").trim();
      const path = `knowledge[${index}].${part}`;
      if (!value) problems.push({ path, message: `Write ${part === "question" ? "a question" : "an answer"}, or delete the entry.` });
      else if (value.length > limits[part]) problems.push({ path, message: `At most ${count(limits[part], "character")}; this one has ${value.length}.` });
    }
  });
  return problems;
}

/**
 * The path of a knowledge field as the page names it: the service says `knowledge[3].answer`,
 * while the request's own validation names the body's item, `3.answer`.
 */
export function knowledgePath(path) {
  const item = /^(\d+)(?:\.(question|answer))?$/.exec(String(path || ""));
  if (item) return item[2] ? `knowledge[${item[1]}].${item[2]}` : `knowledge[${item[1]}]`;
  return path ? String(path) : "knowledge";
}
