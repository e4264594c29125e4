"""The HTML pages: the demo site, the help page and the inbox shell."""

from __future__ import annotations

from tests.conftest import Server


def test_demo_page_embeds_the_widget(server: Server) -> None:
    with server.client() as client:
        page = client.get(f"/demo/{server.demo_agent_id}")
    assert page.status_code == 200
    assert 'src="/static/widget.js"' in page.text
    assert f'data-agent="{server.demo_agent_id}"' in page.text


def test_help_page_runs_the_same_chat_full_page(server: Server) -> None:
    with server.client() as client:
        page = client.get(f"/help/{server.demo_agent_id}")
    assert page.status_code == 200
    assert 'data-mode="page"' in page.text
    assert 'data-channel="help_page"' in page.text


def test_the_widget_learns_from_the_server_which_channel_each_mode_opens(server: Server) -> None:
    with server.client() as client:
        details = client.get(f"/api/v1/agents/{server.demo_agent_id}/public").json()
        offered = client.get("/openapi.json").json()["components"]["schemas"]["ConversationIn"]
    # The launcher on a customer's site, and the full help page.
    assert details["modes"] == {"bubble": "widget", "page": "help_page"}
    assert set(details["modes"].values()) <= set(offered["properties"]["channel"]["enum"])


def test_pages_for_unknown_agents_are_404(server: Server) -> None:
    with server.client() as client:
        for path in ("/demo/nope", "/help/nope", '/help/"><script>alert(1)</script>'):
            response = client.get(path)
            assert response.status_code == 404
            assert "<script>alert(1)" not in response.text


def test_inbox_and_static_assets_are_served(server: Server) -> None:
    with server.client() as client:
        assert "inbox.js" in client.get("/inbox").text
        widget = client.get("/static/widget.js")
        assert widget.status_code == 200
        assert "javascript" in widget.headers["content-type"]
        assert client.get("/docs").status_code == 200


def test_serve_prints_where_everything_is(server: Server) -> None:
    printed = server.log_path.read_text()
    for page in ("/demo/", "/help/", "/inbox", "/settings", "/docs"):
        assert f"{server.url}{page}" in printed, printed
