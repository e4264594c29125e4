"""Service settings: every knob comes from an environment variable prefixed HANDOFF_."""

from __future__ import annotations

import secrets
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from limits import parse_many
from pydantic import AfterValidator, Field, IPvAnyNetwork, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _rate_limit(text: str) -> str:
    """Check a rate limit at load, so that a typo stops the start with a clear message."""
    if not text.strip():
        return text  # empty: no limit
    try:
        windows = parse_many(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a rate limit; write e.g. '60/minute' or '10/second;500/hour', "
            "or leave it empty for no limit"
        ) from None
    if any(window.amount < 1 for window in windows):
        raise ValueError(f"{text!r} allows nothing; leave it empty for no limit")
    return text


RateLimit = Annotated[str, AfterValidator(_rate_limit)]


class Settings(BaseSettings):
    """Configuration of one handoff process (API server or worker)."""

    model_config = SettingsConfigDict(env_prefix="HANDOFF_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Folder for the SQLite file and the generated secret key.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///<data_dir>/handoff.db. "
        "PostgreSQL: postgresql+asyncpg://user:password@host:5432/db",
    )
    host: str = Field(default="127.0.0.1", description="Interface the server listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the server listens on.")
    public_url: str | None = Field(
        default=None,
        description="Base URL users and helpdesks reach the service at (links in tickets); "
        "default http://<host>:<port>.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bootstrap admin API token; generated and printed once at first start "
        "if unset.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts integration credentials at rest (Fernet); "
        "generated into <data_dir>/secret.key if unset. Keep it: without it, saved "
        "credentials cannot be read.",
    )
    default_language: Literal["en", "es", "fr", "de", "pt", "it"] = Field(
        default="en",
        description="The language visitors are answered in until the widget's `lang` or their "
        "own messages say otherwise.",
    )
    run_worker: bool = Field(
        default=True, description="Run the outbox worker inside `handoff serve`."
    )
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle outbox worker looks for due jobs."
    )
    worker_concurrency: int = Field(
        default=8,
        ge=1,
        description="Outbox jobs one worker runs at once; a ticket's follow-ups still go one "
        "after another.",
    )
    worker_integration_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of a worker's concurrent jobs one helpdesk integration may hold, "
        "so a slow or hanging helpdesk leaves the rest to the others and the built-in inbox.",
    )
    timer_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often each outbox worker checks the conversation timers: the wait "
        "notice and the inactivity handback.",
    )
    event_retention_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long live-update events are kept; a stream that reconnects later "
        "reloads the conversation instead of replaying them.",
    )
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a worker holds a job before others may take it."
    )
    job_max_attempts: int = Field(
        default=8, ge=1, description="Attempts before an outbox job is parked as failed."
    )
    retry_base_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay; doubles each attempt, with jitter."
    )
    retry_max_seconds: float = Field(default=600.0, gt=0, description="Longest retry delay.")
    event_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often each process looks, once for all its live streams, for events "
        "written by other processes (SQLite; PostgreSQL while the listener connects again).",
    )
    event_safety_poll_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often each live stream looks for events anyway, as a safety net: "
        "other processes' events reach it through the listener (PostgreSQL) or the poll.",
    )
    helpdesk_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        description="Timeout of one request to an external helpdesk; a timed-out ticket "
        "creation is retried and never duplicated.",
    )
    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="Largest request body, in bytes, of any endpoint without its own limit; "
        "a larger one is refused with 413 while it streams in.",
    )
    webhook_max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="Largest body of a helpdesk or WhatsApp webhook, in bytes. A webhook for "
        "an unknown id answers 404 before its body is read.",
    )
    knowledge_max_body_bytes: int = Field(
        default=8 << 20,
        ge=1024,
        description="Largest body of a knowledge-base upload (PUT .../knowledge), in bytes.",
    )
    # Outbound addresses: URLs admins enter must not reach the service's own network.
    allow_private_urls: bool = Field(
        default=False,
        description="Let helpdesk, OAuth and WhatsApp URLs reach addresses that are not public "
        "(loopback, private networks, link-local such as 169.254.169.254, *.internal): for a "
        "helpdesk on your own network. Off, such URLs are refused when saved and at every "
        "connection.",
    )
    allowed_private_hosts: list[str] = Field(
        default=[],
        description="Host names, addresses or networks that may be reached although not "
        'public, as a JSON list, e.g. ["helpdesk.corp.example", "10.20.0.0/16"]; the rest '
        "stay refused.",
    )
    cors_origins: list[str] = Field(
        default=["*"],
        description="Origins whose pages may call the API (the widget on your sites), as a "
        'JSON list, e.g. ["https://www.example.com"]. Tokens never travel in cookies. '
        "The same origins may embed the help page in a frame; other pages refuse framing.",
    )
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 or "
        "http://localhost:11434/v1; with llm_model set, the AI answers with the model and "
        "the escalate action is offered to it as a tool.",
    )
    llm_model: str | None = Field(default=None, description="Model name, e.g. gpt-4o-mini.")
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key of the LLM endpoint; never logged."
    )
    llm_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Timeout of one LLM request (the SDK retries once)."
    )
    llm_max_tokens: int = Field(default=400, ge=1, description="Longest LLM answer, in tokens.")
    llm_temperature: float = Field(default=0.2, ge=0, le=2, description="LLM temperature.")
    # Which local decider decides each message (the LLM, when configured, still sits on top).
    decider: Literal["rules", "learned"] = Field(
        default="learned",
        description="learned: the multilingual e5 model with a calibrated head (`handoff "
        "train`), with explicit requests, the action's trigger examples, `when_to_use` and "
        "custom topics still honoured by rules; rules: the earlier hand-tuned signals "
        "(English-centric).",
    )
    llm_knowledge_entries: int = Field(
        default=4, ge=1, description="Knowledge-base entries the LLM is grounded on per message."
    )
    # Every knowledge-base entry is embedded by the local model (tens of ms each on a busy core),
    # so one agent's knowledge base is bounded; a larger one is refused with a 422.
    knowledge_max_entries: int = Field(
        default=1000, ge=1, description="Most entries in one agent's knowledge base."
    )
    knowledge_max_question_chars: int = Field(
        default=1000, ge=1, description="Longest question of a knowledge-base entry, in characters."
    )
    knowledge_max_answer_chars: int = Field(
        default=5000, ge=1, description="Longest answer of a knowledge-base entry, in characters."
    )

    # Rate limits on the public surface: "<count>/<second|minute|hour|day>", several joined
    # by ";", or empty for none. Each process counts its own requests.
    rate_limit_conversations_per_ip: RateLimit = Field(
        default="60/minute", description="New conversations one client address may open."
    )
    rate_limit_conversations_per_agent: RateLimit = Field(
        default="600/minute", description="New conversations one agent takes, from everyone."
    )
    rate_limit_messages_per_ip: RateLimit = Field(
        default="300/minute",
        description="Messages (and back-to-bot requests) one client address may send.",
    )
    rate_limit_messages_per_agent: RateLimit = Field(
        default="3000/minute", description="Messages one agent takes, from everyone."
    )
    rate_limit_messages_per_conversation: RateLimit = Field(
        default="30/minute",
        description="Messages (and back-to-bot requests) one conversation may send.",
    )
    rate_limit_escalations_per_agent: RateLimit = Field(
        default="20/minute",
        description="Conversations one agent hands to its team; the message that would "
        "escalate past it is refused (429) and stored only when sent again.",
    )
    rate_limit_logins_per_ip: RateLimit = Field(
        default="10/minute", description="Inbox sign-in attempts one client address may make."
    )
    rate_limit_webhooks_per_ip: RateLimit = Field(
        default="1200/minute", description="Helpdesk and WhatsApp webhook calls per address."
    )
    trusted_proxy_header: str | None = Field(
        default=None,
        description="Header your reverse proxy puts the client address in, e.g. "
        "X-Forwarded-For; unset, the address is the connection's peer.",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default=[IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")],
        description="Addresses (JSON list of IPs or CIDRs) whose trusted_proxy_header is "
        "believed; nobody else can set the client address.",
    )

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'handoff.db').resolve()}"

    @cached_property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """Return the configured secret key, or the one kept in the data folder."""
        if self.secret_key:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        path.write_text(key)
        path.chmod(0o600)
        return key
