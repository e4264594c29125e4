"""An admin sets the API limit the outbox keeps to for a helpdesk, and takes it back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Server
from tests.fakes.webhook_receiver import FakeReceiver

SECRET = "rate-limit-shared-secret-0123456789"


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver(SECRET) as fake:
        yield fake


def test_the_admin_sets_and_resets_an_integrations_rate_limit(
    any_server: Server, receiver: FakeReceiver
) -> None:
    with any_server.admin() as admin:
        workspace = admin.post("/api/v1/workspaces", json={"name": "Pace"}).json()
        agent = admin.post(
            "/api/v1/agents",
            json={"workspace_id": workspace["id"], "name": "Paced", "channels": ["widget"]},
        ).json()
        connected = admin.post(
            f"/api/v1/agents/{agent['id']}/integrations",
            json={
                "platform": "webhook",
                "credentials": {"url": receiver.url, "signing_secret": SECRET},
            },
        )
        assert connected.status_code == 201, connected.text
        # The generic webhook's tool documents no limit: none until the admin sets one.
        assert connected.json()["rate_limit"] is None
        path = f"/api/v1/agents/{agent['id']}/integrations/webhook/rate-limit"

        wrong = admin.put(path, json={"calls": 0, "per_seconds": 60})
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "calls"
        wrong = admin.put(path, json={"calls": 100, "per_seconds": -1})
        assert wrong.json()["detail"][0]["loc"][-1] == "per_seconds"
        native = f"/api/v1/agents/{agent['id']}/integrations/native/rate-limit"
        assert admin.put(native, json={"calls": 10, "per_seconds": 60}).status_code == 404

        set_ = admin.put(path, json={"calls": 120, "per_seconds": 60})
        assert set_.status_code == 200, set_.text
        expected = {"calls": 120, "per_seconds": 60.0, "source": "admin"}
        assert set_.json()["rate_limit"] == expected
        listed = admin.get(f"/api/v1/agents/{agent['id']}/integrations").json()
        assert [i["rate_limit"] for i in listed if i["platform"] == "webhook"] == [expected]

        reset = admin.delete(path)
        assert reset.status_code == 200 and reset.json()["rate_limit"] is None
