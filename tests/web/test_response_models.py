"""Every JSON route documents what it returns: /openapi.json shows a shape, not "an object"."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any, get_args

from fastapi import APIRouter
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

import handoff.web


def api_routes() -> Iterator[APIRoute]:
    """Every route of every router in the web package."""
    for info in pkgutil.iter_modules(handoff.web.__path__):
        module = importlib.import_module(f"handoff.web.{info.name}")
        for router in vars(module).values():
            if isinstance(router, APIRouter):
                yield from (r for r in router.routes if isinstance(r, APIRoute))


def answers_json(route: APIRoute) -> bool:
    # A route that names no response class has FastAPI's default, JSON, as a placeholder.
    response_class = route.response_class
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    return issubclass(response_class, JSONResponse) and route.status_code != 204


def mentions_any(annotation: Any) -> bool:
    """Whether a response model leaves part of the answer undescribed (`dict[str, Any]`)."""
    return annotation is Any or any(mentions_any(arg) for arg in get_args(annotation))


def test_every_json_route_has_a_response_model() -> None:
    untyped = sorted(
        f"{sorted(route.methods)[0]} {route.path}"
        for route in api_routes()
        if answers_json(route)
        and (route.response_model is None or mentions_any(route.response_model))
    )
    assert untyped == []


def test_the_check_sees_the_json_routes() -> None:
    paths = {route.path for route in api_routes() if answers_json(route)}
    assert {"/api/v1/tickets/{ticket_id}", "/api/v1/agents/{agent_id}/actions"} <= paths
    assert "/api/v1/inbox/events" not in paths  # a stream
    assert mentions_any(list[dict[str, Any]]) and not mentions_any(dict[str, list[str]])
