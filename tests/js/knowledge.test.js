// The knowledge base's CSV import and limits, as the Settings page applies them before sending.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  checkKnowledge,
  CsvError,
  DEFAULT_LIMITS,
  importSummary,
  knowledgePath,
  limitsFrom,
  parseCsv,
  readKnowledgeCsv,
} from "../../src/handoff/web/static/settings/knowledge.js";

const SMALL = { entries: 2, question: 10, answer: 20 };

describe("parseCsv", () => {
  it("splits records and fields", () => {
    assert.deepEqual(parseCsv("a,b\nc,d\n"), [
      ["a", "b"],
      ["c", "d"],
    ]);
    assert.deepEqual(parseCsv("a,b\r\nc,d"), [
      ["a", "b"],
      ["c", "d"],
    ]);
    assert.deepEqual(parseCsv("a\rb"), [["a"], ["b"]]);
    assert.deepEqual(parseCsv("a,,"), [["a", "", ""]]);
  });

  it("keeps commas, line breaks and doubled quotes inside quotes", () => {
    assert.deepEqual(parseCsv('"Hi, there","Line one\nline ""two"""\n'), [["Hi, there", 'Line one\nline "two"']]);
    assert.deepEqual(parseCsv('q,"a\r\nb"'), [["q", "a\r\nb"]]);
    assert.deepEqual(parseCsv('x, "quoted"'), [["x", "quoted"]]);
    assert.deepEqual(parseCsv('""'), [[""]]);
  });

  it("drops a byte-order mark and reads nothing from nothing", () => {
    assert.deepEqual(parseCsv("\uFEFFquestion,answer"), [["question", "answer"]]);
    assert.deepEqual(parseCsv(""), []);
  });

  it("names the row of an unclosed quote", () => {
    assert.throws(() => parseCsv('question,answer\nok,fine\n"never,closed\n'), (e) => e instanceof CsvError && /Row 3/.test(e.message));
  });
});

describe("readKnowledgeCsv", () => {
  it("reads entries under a header in any order, other columns ignored", () => {
    const read = readKnowledgeCsv('id,answer,question\n1,"Yes, daily.",Do you ship?\n2, Two days ,How long?\n');
    assert.deepEqual(read.entries, [
      { question: "Do you ship?", answer: "Yes, daily." },
      { question: "How long?", answer: "Two days" },
    ]);
    assert.deepEqual(read.refused, []);
    assert.equal(read.rows, 2);
  });

  it("refuses rows naming them as a spreadsheet numbers them, and skips blank ones", () => {
    const text = ["Question,Answer", "ok,fine", ",no question", "no answer,", "", "far too long a question,x", "q,an answer much too long for this", "last,one"].join("\n");
    const read = readKnowledgeCsv(text, SMALL);
    assert.deepEqual(read.entries, [
      { question: "ok", answer: "fine" },
      { question: "last", answer: "one" },
    ]);
    assert.deepEqual(
      read.refused.map((r) => r.row),
      [3, 4, 6, 7],
    );
    assert.equal(read.refused[0].reason, "the question is empty");
    assert.equal(read.refused[1].reason, "the answer is empty");
    assert.equal(read.refused[2].reason, "the question is too long (at most 10 characters; it has 23)");
    assert.match(read.refused[3].reason, /^the answer is too long \(at most 20 characters/);
    assert.equal(read.rows, 6);
  });

  it("counts rows by record, not by line, when a cell spans lines", () => {
    const read = readKnowledgeCsv('question,answer\nq1,"two\nlines"\n,empty\n');
    assert.deepEqual(read.refused, [{ row: 3, reason: "the question is empty" }]);
  });

  it("needs the header", () => {
    assert.throws(() => readKnowledgeCsv("Do you ship?,Yes\n"), CsvError);
    assert.throws(() => readKnowledgeCsv(""), CsvError);
  });

  it("sums up what it did", () => {
    assert.equal(importSummary({ entries: [{}], refused: [], rows: 1 }), "Read 1 row: 1 entry added.");
    assert.equal(
      importSummary({ entries: [{}, {}], refused: [{ row: 4, reason: "the answer is empty" }], rows: 3 }),
      "Read 3 rows: 2 entries added, 1 refused (row 4: the answer is empty).",
    );
  });
});

describe("checkKnowledge", () => {
  it("passes entries within the limits", () => {
    assert.deepEqual(checkKnowledge([{ question: " q ", answer: "a" }], SMALL), []);
    assert.deepEqual(checkKnowledge([], SMALL), []);
  });

  it("names the entry and the field, as the API does", () => {
    const problems = checkKnowledge(
      [
        { question: "ok", answer: "   " },
        { question: "12345678901", answer: "fine" },
        { question: "ok", answer: "fine" },
      ],
      SMALL,
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ["knowledge", "knowledge[0].answer", "knowledge[1].question"],
    );
    assert.equal(problems[0].message, "At most 2 entries; the list has 3. Delete some before saving.");
    assert.equal(problems[2].message, "At most 10 characters; this one has 11.");
  });
});

describe("limits and paths", () => {
  it("reads the configured limits, else the defaults", () => {
    assert.deepEqual(limitsFrom({ knowledgeMaxEntries: "5", knowledgeMaxQuestion: "x", knowledgeMaxAnswer: "0" }), { ...DEFAULT_LIMITS, entries: 5 });
    assert.deepEqual(limitsFrom(undefined), DEFAULT_LIMITS);
  });

  it("names the request's items as the service does", () => {
    assert.equal(knowledgePath("3.answer"), "knowledge[3].answer");
    assert.equal(knowledgePath("0"), "knowledge[0]");
    assert.equal(knowledgePath("knowledge[3].question"), "knowledge[3].question");
    assert.equal(knowledgePath(""), "knowledge");
  });
});
