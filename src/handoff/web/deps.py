"""Request plumbing: the service runtime, bearer tokens and who the caller is."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from handoff.service.runtime import Handoff

bearer_scheme = HTTPBearer(auto_error=False, description="Admin, member or visitor token.")


def get_handoff(request: Request) -> Handoff:
    hf: Handoff = request.app.state.handoff
    return hf


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str | None:
    return credentials.credentials if credentials else None


def stream_token(
    request: Request, token: Annotated[str | None, Depends(bearer_token)]
) -> str | None:
    """Bearer header, or `access_token` in the query: EventSource cannot send headers."""
    return token or request.query_params.get("access_token")


HandoffDep = Annotated[Handoff, Depends(get_handoff)]
TokenDep = Annotated[str | None, Depends(bearer_token)]
StreamTokenDep = Annotated[str | None, Depends(stream_token)]
