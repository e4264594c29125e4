// The staff pages' shared, DOM-free helpers: error wording and formatting.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { detailOf, errorPath, fallbackMessage, humanize } from "../../src/handoff/web/static/staff/errors.js";
import {
  emailPieces,
  hue,
  initials,
  linkPieces,
  relTime,
  safeHttpUrl,
  shortId,
} from "../../src/handoff/web/static/staff/format.js";

describe("errors", () => {
  it("reads a string detail, without pydantic's lead", () => {
    assert.equal(detailOf({ detail: "Value error, name is taken" }), "name is taken");
  });

  it("names each validation error's field, without `body`", () => {
    const data = {
      detail: [
        { loc: ["body", "credentials", "url"], msg: "Field required" },
        { loc: ["body"], msg: "Invalid JSON" },
      ],
    };
    assert.equal(detailOf(data), "credentials.url: Field required · Invalid JSON");
    assert.equal(errorPath({ loc: ["body", "channels", 0] }), "channels.0");
    assert.equal(errorPath({ loc: ["body", "body"] }), "body");
    assert.equal(errorPath({ loc: ["body"] }), "");
  });

  it("words a refused or unreachable helpdesk by its code, once", () => {
    assert.equal(humanize("invalid_auth: 401 from Zendesk", "invalid_auth"), "Not connected, the credentials were refused: 401 from Zendesk");
    assert.equal(humanize("timed out", "cannot_connect"), "Not connected: timed out");
    assert.equal(humanize("timed out", "other"), "timed out");
  });

  it("falls back on the status when the answer names nothing", () => {
    assert.equal(detailOf(null), "");
    assert.equal(detailOf({ detail: { message: "Busy" } }), "Busy");
    assert.equal(fallbackMessage(503), "Server error. Please try again.");
    assert.equal(fallbackMessage(404), "Request failed (404).");
  });
});

describe("format", () => {
  it("makes initials of names and emails", () => {
    assert.equal(initials("Jane Doe"), "JD");
    assert.equal(initials("jane.doe@example.com"), "JD");
    assert.equal(initials("  "), "?");
    assert.equal(initials(null), "?");
  });

  it("gives a name the same hue every time, within the circle", () => {
    assert.equal(hue("Jane"), hue("Jane"));
    assert.notEqual(hue("Jane"), hue("John"));
    for (const name of ["", "a", "Zoë Ångström", "x".repeat(500)]) {
      assert.ok(hue(name) >= 0 && hue(name) < 360, name);
    }
  });

  it("shortens only long ids", () => {
    assert.equal(shortId("0f8c2d9a4b7e4c1d9e2f"), "0f8c2d9a");
    assert.equal(shortId(42), "42");
    assert.equal(shortId(null), "");
  });

  it("lets only http(s) URLs through", () => {
    assert.equal(safeHttpUrl("https://example.com/a.png"), "https://example.com/a.png");
    assert.equal(safeHttpUrl("javascript:alert(1)"), null);
    assert.equal(safeHttpUrl("data:image/png;base64,AAAA"), null);
    assert.equal(safeHttpUrl("not a url"), null);
    assert.equal(safeHttpUrl(undefined), null);
  });

  it("says how long ago, then the date", () => {
    const now = Date.parse("2026-03-10T12:00:00Z");
    const ago = (seconds) => new Date(now - seconds * 1000).toISOString();
    assert.equal(relTime(ago(10), now), "just now");
    assert.equal(relTime(ago(5 * 60), now), "5m ago");
    assert.equal(relTime(ago(3 * 3600), now), "3h ago");
    assert.equal(relTime(ago(2 * 86400), now), "2d ago");
    assert.match(relTime(ago(30 * 86400), now), /\d/);
    assert.equal(relTime("garbage", now), "");
    assert.equal(relTime(null, now), "");
  });

  it("cuts links out of text, leaving trailing punctuation outside", () => {
    assert.deepEqual(linkPieces("See https://example.com/help. Thanks"), [
      { text: "See " },
      { href: "https://example.com/help" },
      { text: ". Thanks" },
    ]);
    assert.deepEqual(linkPieces("no links"), [{ text: "no links" }]);
    assert.deepEqual(linkPieces("javascript:alert(1)"), [{ text: "javascript:alert(1)" }]);
    assert.deepEqual(linkPieces(null), []);
  });

  it("breaks an email after its @ and before its dots", () => {
    assert.deepEqual(emailPieces("jane.doe@mail.example.com"), ["jane", ".doe@", "mail", ".example", ".com"]);
    assert.equal(emailPieces("jane.doe@mail.example.com").join(""), "jane.doe@mail.example.com");
  });
});
