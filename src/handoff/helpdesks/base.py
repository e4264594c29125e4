"""The one contract every helpdesk connector implements, and what it is built from.

A connector is a pure adapter over one platform's HTTP API: it gets its credentials, an
`httpx.AsyncClient`, the webhook secret we generated for the integration and, for OAuth, the
`TokenStore` that keeps its tokens; it never touches the store itself. One module per platform,
always in this order: a `Credentials` model (the connect form), the connector class (a
`Connector` over that form) with its class attributes and `_setup`, then the methods of
`Helpdesk`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Protocol,
    Self,
    TypeVar,
    cast,
    get_args,
    get_origin,
)

import httpx
from pydantic import BaseModel, Field, SecretStr, model_validator

from handoff.domain import Contact, Message, TicketEvent, TicketPacket, TicketRef
from handoff.helpdesks import common
from handoff.helpdesks.errors import InvalidCredentials
from handoff.helpdesks.oauth import MemoryTokens, OAuthTokens, TokenStore

FormT = TypeVar("FormT", bound=BaseModel)


class Choice(BaseModel):
    """One value an admin may pick for a connect-form field, as the platform lists it."""

    value: str
    label: str


def address_override(replaces: str, *, title: str = "API base URL") -> Any:
    """Declare a connect form's field for an address other than the platform's own, which it
    `replaces`: for tests and proxies, so the settings page keeps it under Advanced."""
    return Field(
        default=None,
        title=title,
        description=f"Leave empty. Overrides {replaces} (tests, proxies).",
    )


class SignInForm(BaseModel):
    """A connect form that offers several ways to sign in, its `auth` field naming the one
    chosen: which fields are required depends on it."""

    auth_fields: ClassVar[Mapping[str, tuple[str, ...]]]  # per way of signing in, what it needs
    if TYPE_CHECKING:
        auth: str  # a field of each form, as a Literal of its ways: declared there, in its place

    @model_validator(mode="after")
    def _auth_fields(self) -> Self:
        missing = [name for name in self.auth_fields[self.auth] if not getattr(self, name)]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required when auth is {self.auth!r}")
        return self


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound webhook as a connector sees it: what the platform sent, and where.

    Header names are lower-cased once here, since HTTP treats them case-insensitively and
    every connector would otherwise search for its headers in both spellings.
    """

    method: str
    url: str  # the public webhook URL the platform was given; some vendors sign it
    headers: Mapping[str, str]
    body: bytes

    def __post_init__(self) -> None:
        lowered = {name.lower(): value for name, value in self.headers.items()}
        object.__setattr__(self, "headers", MappingProxyType(lowered))

    def header(self, name: str) -> str | None:
        """Return the header's value, whatever the case of `name`; None when absent."""
        return self.headers.get(name.lower())


class Helpdesk(Protocol):
    """A helpdesk platform the Escalate to Human action can open tickets in."""

    platform: ClassVar[str]  # the registry key, e.g. "zendesk"
    title: ClassVar[str]  # what the admin sees, e.g. "Zendesk"
    description: ClassVar[str]  # what it is, in a line, for Settings → Integrations
    max_body_chars: ClassVar[int]  # the longest ticket body the platform takes
    credentials_model: ClassVar[type[BaseModel]]  # the connect form, validated at the edge

    def __init__(
        self,
        credentials: BaseModel,
        *,
        http: httpx.AsyncClient,
        webhook_secret: str,
        tokens: TokenStore | None = None,  # where OAuth tokens live; unused by static keys
    ) -> None: ...

    async def verify_credentials(self) -> None:
        """Make one cheap authenticated call; raise InvalidCredentials or Unavailable."""
        ...

    async def options(self) -> dict[str, list[Choice]]:
        """Return, per connect-form field, the values the platform offers (fetched live)."""
        ...

    async def create_ticket(self, packet: TicketPacket) -> TicketRef:
        """Create the ticket once per `packet.idempotency_key`, even when retried."""
        ...

    async def add_message(self, ticket: TicketRef, message: Message, contact: Contact) -> None:
        """Add a user's follow-up message to the ticket, as the customer (not as an agent)."""
        ...

    def verify_webhook(self, request: WebhookRequest, *, now: float | None = None) -> None:
        """Check an inbound webhook's signature (and timestamp); raise BadSignature."""
        ...

    async def parse_webhook(self, request: WebhookRequest) -> list[TicketEvent]:
        """Return the agent replies and solved/closed changes in a verified webhook."""
        ...

    def webhook_setup(self, webhook_url: str) -> list[str]:
        """Return the steps an admin follows on the platform to send us its webhooks."""
        ...


class Connector(ABC, Generic[FormT]):
    """What every connector is built from, so that each declares only what differs.

    The constructor is the one `Helpdesk` asks for: it keeps the connect form (as the
    connector's own `FormT`), the HTTP client, the secret handoff generated for its webhooks
    and the token store, then lets `_setup` derive the rest from the form: `_base_url`, where
    the platform's API lives, and `_auth` when calls sign in through httpx.

    Calls to the API go through `_call`, which sends the headers every call carries
    (`_headers`) and maps failed answers to connector errors with `_check`; a connector
    teaches `_check` its platform's error bodies (`_codes`) and rate-limit headers.
    """

    platform: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    max_body_chars: ClassVar[int]
    # FormT itself, read from the class's `Connector[Form]` base: a ClassVar cannot name it.
    credentials_model: ClassVar[type[BaseModel]]
    # Headers besides Retry-After in which the platform says how long a rate limit lasts.
    retry_headers: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            origin, args = get_origin(base), get_args(base)
            if isinstance(origin, type) and issubclass(origin, Connector) and args:
                form = args[0]
                if isinstance(form, type) and issubclass(form, BaseModel):
                    cls.credentials_model = form

    def __init__(
        self,
        credentials: BaseModel,
        *,
        http: httpx.AsyncClient,
        webhook_secret: str,
        tokens: TokenStore | None = None,
    ) -> None:
        # own_form checks the instance against credentials_model, which is FormT.
        self._credentials = cast(FormT, common.own_form(credentials, self.credentials_model))
        self._http = http
        # Platforms that sign with their own secret, or one the admin typed, replace it.
        self._webhook_secret = webhook_secret
        self._tokens: TokenStore = tokens or MemoryTokens()
        self._base_url = ""
        self._headers: dict[str, str] = {"Accept": "application/json"}
        self._auth: httpx.Auth | None = None
        self._setup(self._credentials)

    @abstractmethod
    def _setup(self, form: FormT) -> None:
        """Derive, once, what the calls need from the form: the API's URL, how to sign in."""

    @property
    def _vendor(self) -> str:
        """The platform's name in the errors a connector raises."""
        return self.title

    def _sign_webhooks_with(self, typed: SecretStr | None) -> None:
        """Check webhooks with the secret the admin typed into the form, when there is one.

        A platform that makes up its own signing secret shows it to the admin only; until it
        is typed in, the generated secret stays, which that platform never signs with, so its
        webhooks fail closed.
        """
        if typed:
            self._webhook_secret = typed.get_secret_value()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> httpx.Response:
        """Send one signed-in request to the API; unless `check` is off, raise on a failure."""
        request = self._http.build_request(
            method,
            self._base_url + path,
            json=json,
            params=params,
            headers={**self._headers, **(headers or {})},
        )
        return await self._send(request, check=check)

    async def _send(self, request: httpx.Request, *, check: bool = True) -> httpx.Response:
        """Send a request built by the connector, signed in, mapping failures like `_call`."""
        response = await common.send(self._http, request, platform=self._vendor, auth=self._auth)
        return self._check(response) if check else response

    def _check(self, response: httpx.Response) -> httpx.Response:
        """Return a successful answer; raise the connector error that fits any other."""
        return common.check_response(
            response,
            platform=self._vendor,
            codes=self._codes,
            retry_headers=self.retry_headers,
            wait=self._rate_limit_wait,
        )

    def _codes(self, response: httpx.Response) -> Iterable[object]:
        """Read the error codes of a failed answer's body; none unless the connector knows how."""
        return ()

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        """Read how long a rate limit lasts when no Retry-After says; unknown by default."""
        return None


class AuthorizationCodeConnector(Connector[FormT]):
    """A connector whose form may sign in through the OAuth authorization code flow.

    The code, then each refresh token, is traded for tokens at the platform's token endpoint
    (`_grant`). A refresh answer without a refresh token keeps the one held, unless the
    platform rotates them: there the old one died with the refresh.
    """

    rotates_refresh_tokens: ClassVar[bool] = False

    async def exchange_code(self, code: str, redirect_uri: str) -> OAuthTokens:
        """Trade the authorization code for the first access and refresh tokens."""
        return await self._grant(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )

    async def _refresh(self, held: OAuthTokens | None) -> OAuthTokens:
        if held is None or not held.refresh_token:
            raise InvalidCredentials(
                f"{self._vendor}: no OAuth refresh token; approve access again"
            )
        fields = {"grant_type": "refresh_token", "refresh_token": held.refresh_token}
        keep = None if self.rotates_refresh_tokens else held.refresh_token
        return await self._grant(fields, keep_refresh=keep)

    @abstractmethod
    async def _grant(self, fields: dict[str, str], keep_refresh: str | None = None) -> OAuthTokens:
        """POST one grant, with the form's OAuth client, to the platform's token endpoint."""
