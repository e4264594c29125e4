"""The inbox list over HTTP with a thousand tickets: pages, filters, orders, counts, search.

The tickets are written straight into the server's database (a thousand escalations through
the chat API would take minutes); every question is asked over HTTP, on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, Server
from tests.web.busy import Busy, add_tickets, busy_inbox

TICKETS = 1000


@pytest.fixture(scope="module", params=BACKENDS)
def inbox(request: pytest.FixtureRequest, servers: dict[str, Server]) -> Iterator[Busy]:
    yield busy_inbox(servers[request.param], TICKETS)


def page(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/tickets", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def every_page(client: httpx.Client, **params: Any) -> list[str]:
    """Follow the cursors to the end; return the ids in the order they came."""
    ids: list[str] = []
    cursor = None
    while True:
        body = page(client, **params, **({"cursor": cursor} if cursor else {}))
        ids += [t["id"] for t in body["tickets"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def test_search_finds_the_oldest_waiting_ticket_by_a_word_of_its_messages(inbox: Busy) -> None:
    oldest = inbox.tickets[0]
    assert oldest.waiting
    with inbox.client() as client:
        newest = page(client, limit=200)
        assert oldest.id not in [t["id"] for t in newest["tickets"]]  # far down the list

        found = page(client, q="zanzibar")
        assert [t["id"] for t in found["tickets"]] == [oldest.id]
        assert found["tickets"][0]["waiting"] is True

        refunds = page(client, q="refund", sort="oldest_waiting", limit=5)
        french = page(client, q="remboursement", status="all")
        by_email = page(client, q="Customer417@EXAMPLE", status="all")
        by_subject = page(client, q="order question 418", status="all")
        punctuation = page(client, q='"* OR (%_', status="all")  # query syntax is only text
    assert refunds["tickets"][0]["id"] == oldest.id
    assert [t["id"] for t in refunds["tickets"]] == inbox.ids(lambda t: t.i % 3 == 0 and t.waiting)[
        :5
    ]
    assert [t["id"] for t in french["tickets"]] == [inbox.tickets[1].id]
    assert [t["id"] for t in by_email["tickets"]] == [inbox.tickets[417].id]
    assert [t["id"] for t in by_subject["tickets"]] == [inbox.tickets[418].id]
    assert punctuation["tickets"] == []


def test_search_pages_through_every_match(inbox: Busy) -> None:
    with inbox.client() as client:
        ids = every_page(client, q="refund", status="all", limit=60)
    assert ids == list(reversed(inbox.ids(lambda t: t.i % 3 == 0)))


def test_oldest_waiting_puts_unanswered_tickets_first_longest_waiting_first(
    inbox: Busy,
) -> None:
    with inbox.client() as client:
        ids = every_page(client, sort="oldest_waiting", status="all", limit=200)
    waiting = inbox.ids(lambda t: t.waiting)
    assert ids == waiting + inbox.ids(lambda t: not t.waiting)


def test_filters(inbox: Busy) -> None:
    with inbox.client() as client:
        mine = every_page(client, assignee="me", status="all", limit=200)
        nobodys = every_page(client, assignee="unassigned", limit=200)
        by_member = every_page(client, assignee=inbox.member_id, status="solved", limit=200)
        waiting = every_page(client, status="waiting", limit=200)
        solved = every_page(client, status="solved", limit=200)
        sensitive = every_page(client, reason="sensitive_topic", status="all", limit=200)
        whatsapp = every_page(client, channel="whatsapp", status="open", limit=200)
        native = page(client, platform="native", status="all", limit=1)
        zendesk = page(client, platform="zendesk", status="all")
    newest_first = list(reversed(inbox.tickets))
    assert mine == [t.id for t in newest_first if t.mine]
    assert nobodys == [t.id for t in newest_first if not t.mine and not t.solved]
    assert by_member == [t.id for t in newest_first if t.mine and t.solved]
    assert waiting == [t.id for t in newest_first if t.waiting]
    assert solved == [t.id for t in newest_first if t.solved]
    assert sensitive == [t.id for t in newest_first if t.reason == "sensitive_topic"]
    assert whatsapp == [t.id for t in newest_first if t.channel == "whatsapp" and not t.solved]
    assert native["next_cursor"] is not None
    assert zendesk["tickets"] == [] and zendesk["next_cursor"] is None


def test_counts_per_view(inbox: Busy) -> None:
    with inbox.client() as client:
        counts = page(client, limit=1)["counts"]
    open_ = [t for t in inbox.tickets if not t.solved]
    assert counts == {
        "mine": sum(t.mine for t in open_),
        "unassigned": sum(not t.mine for t in open_),
        "open": len(open_),
        "waiting": sum(t.waiting for t in open_),
    }


def test_a_bad_cursor_is_refused_with_its_code(inbox: Busy) -> None:
    with inbox.client() as client:
        cursor = page(client, limit=10)["next_cursor"]
        tampered = client.get("/api/v1/tickets", params={"limit": 10, "cursor": cursor[:-4]})
        made_up = client.get("/api/v1/tickets", params={"cursor": "eyJhZnRlciI6IFswXX0="})
        other_list = client.get(
            "/api/v1/tickets", params={"limit": 10, "cursor": cursor, "status": "all"}
        )
        same_list = client.get("/api/v1/tickets", params={"limit": 10, "cursor": cursor})
    for refused in (tampered, made_up, other_list):
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "invalid_cursor"
        assert refused.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert same_list.status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "closed"}, "status"),
        ({"sort": "random"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"reason": "boredom"}, "reason"),
        ({"channel": "sms"}, "channel"),
        ({"platform": "jira"}, "platform"),
        ({"assignee": "nobody-here"}, "assignee"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_parameters_name_their_field(inbox: Busy, params: dict[str, Any], field: str) -> None:
    with inbox.client() as client:
        response = client.get("/api/v1/tickets", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_input"
    assert any(e["loc"][-1] == field for e in response.json()["detail"]), response.text


def test_the_service_admin_has_no_tickets_of_its_own(inbox: Busy) -> None:
    with inbox.server.admin() as admin:
        response = admin.get("/api/v1/tickets", params={"assignee": "me"})
        counts = page(admin, limit=1)["counts"]
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "assignee"]
    assert counts["mine"] == 0


# Last: the tickets it adds would change what the tests above expect.
def test_pages_skip_and_repeat_nothing_while_new_tickets_arrive(inbox: Busy) -> None:
    arrivals = iter(range(TICKETS, 10**6, 3))
    for sort in ("newest", "oldest_waiting"):
        seen: list[str] = []
        arrived: list[str] = []
        cursor = None
        with inbox.client() as client:
            while True:
                params = {"status": "all", "sort": sort, "limit": 150}
                body = page(client, **params, **({"cursor": cursor} if cursor else {}))
                seen += [t["id"] for t in body["tickets"]]
                cursor = body["next_cursor"]
                if cursor is None:
                    break
                first = next(arrivals)
                arrived += add_tickets(inbox, range(first, first + 3))
        assert len(seen) == len(set(seen)), f"{sort}: a ticket came twice"
        assert set(inbox.ids()) <= set(seen), f"{sort}: a ticket was skipped"
        assert len(arrived) >= 18  # tickets did arrive while paging
        if sort == "oldest_waiting":  # waiting arrivals join the waiting tickets still ahead
            assert set(seen) & set(arrived)
