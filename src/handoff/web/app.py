"""The FastAPI application: API routers, pages, static assets, health and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp

from handoff import __version__
from handoff.service import language, outbox
from handoff.service.jobs import build_worker
from handoff.service.runtime import Handoff
from handoff.web import (
    api_admin,
    api_canned,
    api_conversations,
    api_inbox,
    api_oauth,
    api_platforms,
    api_webhooks,
    api_whatsapp,
    pages,
)
from handoff.web.deps import AdminAuth
from handoff.web.errors import ERROR_HANDLERS, JsonBodyLimit
from handoff.web.hardening import SecurityHeaders
from handoff.web.pages import SWAGGER_DIR

log = structlog.get_logger(__name__)
STATIC = Path(__file__).parent / "static"


class HandoffApp(FastAPI):
    """FastAPI, with the body limit's plain-text 413 answered in the JSON error shape.

    FastAPI puts its app-wide body limit outside every middleware an app adds, so the one
    that rewrites its answer has to wrap the whole stack.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return JsonBodyLimit(super().build_middleware_stack())


def create_app(hf: Handoff) -> FastAPI:
    """Build the app around a runtime; `serve` runs it, tests talk to it over HTTP."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(lambda: hf.decider)  # load the encoder before the first chat
        await asyncio.to_thread(language.load)
        stop = asyncio.Event()
        async with hf.listening(), hf.polling():
            task = (
                asyncio.create_task(build_worker(hf).run(stop)) if hf.settings.run_worker else None
            )
            yield
            stop.set()
            if task is not None:
                hf.bus.notify()  # wake the idle worker to see `stop`
                with suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=10)
        await hf.close()

    app = HandoffApp(
        title="handoff",
        version=__version__,
        description="Escalate to Human for AI support agents.",
        lifespan=lifespan,
        # /docs is our own page over the Swagger UI package's files (pages.py): no CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # Bodies are refused with 413 while they stream in, before anything reads them whole.
        max_body_size=hf.settings.max_body_bytes,
    )
    app.state.handoff = hf
    # The widget runs on customers' sites. Tokens travel in headers, never cookies, so any
    # origin may call the API without credentials.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=hf.settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        expose_headers=["Retry-After"],  # how long a rate-limited page should wait
        allow_credentials=False,
    )
    settings = hf.settings
    app.add_middleware(
        SecurityHeaders,
        embeddable=lambda path: path.startswith("/help/"),
        embed_origins=settings.cors_origins,
        hsts=settings.resolved_public_url.startswith("https://"),
    )

    for error_type, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(error_type, handler)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Return 200 while the service is up."""
        return {"status": "ok", "version": __version__}

    @app.get(
        "/readyz",
        tags=["ops"],
        responses={503: {"description": "The database does not answer or needs migrations."}},
    )
    async def readyz() -> JSONResponse:
        """Return 200 once the database answers and its schema is this release's; else 503."""
        problem = await hf.readiness_problem()
        if problem is not None:
            return JSONResponse({"status": "not ready", "detail": problem}, status_code=503)
        return JSONResponse({"status": "ready", "version": __version__})

    @app.get("/metrics", tags=["ops"])
    async def metrics(_: AdminAuth) -> Response:
        """Prometheus metrics (admin token); the outbox's backlog is measured at each scrape."""
        await outbox.measure_queue(hf)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api_admin.router)
    app.include_router(api_admin.knowledge_router, max_body_size=settings.knowledge_max_body_bytes)
    app.include_router(api_canned.router)
    app.include_router(api_conversations.router)
    app.include_router(api_inbox.router)
    app.include_router(api_oauth.router)
    app.include_router(api_platforms.router)
    app.include_router(api_webhooks.router, max_body_size=settings.webhook_max_body_bytes)
    app.include_router(api_whatsapp.router, max_body_size=settings.webhook_max_body_bytes)
    app.include_router(pages.router)
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_DIR), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
