"""Every registered helpdesk has its tests and a fake server, and fits the one contract."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from handoff.domain import PLATFORMS
from handoff.helpdesks import HELPDESKS

TESTS = Path(__file__).resolve().parent
FAKES = TESTS.parent / "fakes"
FAKE_FOR = {"webhook": "webhook_receiver"}


@pytest.mark.parametrize("platform", sorted(HELPDESKS))
def test_registered_platform_has_tests_and_a_fake(platform: str) -> None:
    cls = HELPDESKS[platform]
    assert cls.platform == platform
    assert platform in PLATFORMS
    assert (TESTS / f"test_{platform}.py").exists()
    assert (FAKES / f"{FAKE_FOR.get(platform, platform)}.py").exists()
    assert cls.max_body_chars > 0 and cls.title
    for method in ("verify_credentials", "create_ticket", "add_message", "parse_webhook"):
        assert callable(getattr(cls, method))


@pytest.mark.parametrize("platform", sorted(HELPDESKS))
def test_the_connect_form_is_the_one_the_connector_is_declared_over(platform: str) -> None:
    # `Connector[Credentials]` names the form once; the registry and Settings read it back.
    cls = HELPDESKS[platform]
    assert cls.credentials_model is vars(sys.modules[cls.__module__])["Credentials"]


def test_a_connector_refuses_another_platforms_form() -> None:
    zendesk, webhook = HELPDESKS["zendesk"], HELPDESKS["webhook"]
    form = webhook.credentials_model.model_validate(
        {"url": "https://tool.example/hook", "signing_secret": "s" * 20}
    )
    with pytest.raises(TypeError, match="zendesk"):
        zendesk(form, http=httpx.AsyncClient(), webhook_secret="x")
