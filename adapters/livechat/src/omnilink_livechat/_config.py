"""The live-chat channel's settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_UPLOAD_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
)


class LivechatConfig(BaseModel):
    """Settings of one live-chat site (one widget installation)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    site_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    """The site the widget runs on; the thread's ``account``. The script tag's ``data-site``."""
    secret: SecretStr = Field(min_length=16)
    """Signs visitor, session and upload tokens. Keep it server-side; rotate to log everyone out."""
    identity_secret: SecretStr | None = None
    """When set, a site may pass a verified identity: an email address and
    hex HMAC-SHA256(identity_secret, address). Without it, identities are refused."""
    allowed_origins: tuple[str, ...] = ()
    """Origins (``https://shop.example``) whose pages may open a socket or call the API.
    Empty: only pages served from the helpdesk's own origin. ``*`` allows any origin."""
    token_max_age_days: int = Field(default=365, ge=1)
    """How long an anonymous visitor token stays valid."""
    agents_available: bool = True
    """Whether agents answer now; when not, the widget offers to continue on email."""
    max_text_chars: int = Field(default=4000, ge=1)
    """Longest visitor message accepted, and longest agent text per pushed message."""
    max_frame_bytes: int = Field(default=16_384, ge=512)
    """Largest WebSocket frame a visitor may send; larger frames close the socket (1009)."""
    messages_per_minute: int = Field(default=30, ge=1)
    """Visitor messages one connection may send per minute (burst: a third of it, at least 5)."""
    frames_per_second: float = Field(default=10.0, gt=0)
    """Any frames (typing, pings, reads) one connection may send per second on average."""
    typing_interval_seconds: float = Field(default=1.0, ge=0)
    """A visitor's typing state is forwarded at most this often."""
    heartbeat_seconds: float = Field(default=25.0, gt=0)
    """How often the widget pings; a socket silent for three intervals is closed."""
    send_buffer: int = Field(default=256, ge=1)
    """Frames queued per socket; a visitor that falls this far behind is disconnected and
    resyncs on reconnect (pushes are never retried)."""
    history_limit: int = Field(default=200, ge=1)
    """Most messages a resync returns."""
    upload_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    upload_types: frozenset[str] = DEFAULT_UPLOAD_TYPES
    """Content types a visitor may upload; images and PDFs must also look like what they claim."""
    upload_dir: str | None = None
    """Directory for visitor uploads. None keeps them in memory (tests, demos)."""
    notify_dsn: str | None = None
    """A PostgreSQL DSN: fan agent replies out to visitors connected to other processes with
    LISTEN/NOTIFY. Use the DSN of the Hub's PostgresStore."""
    notify_channel: str = Field(default="omnilink_livechat", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    title: str = "Chat with us"
    """The widget's heading."""

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin != "*" and ("://" not in origin or origin.endswith("/")):
                raise ValueError(f"an origin is scheme://host[:port] without a path, got {origin!r}")
        return tuple(origin.lower() for origin in value)
