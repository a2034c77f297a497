"""Settings of the email channel: the mailbox, SMTP, IMAP and the inbound-parse webhooks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class SmtpConfig(_Config):
    """Where and how to send."""

    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` (port 587), ``tls`` (implicit TLS, port 465) or ``none`` (tests only)."""
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = 30.0
    """Seconds for each SMTP command."""
    validate_certs: bool = True
    cert_bundle: str | None = None
    """A CA bundle to trust instead of the system's (a private relay)."""


class ImapConfig(_Config):
    """The mailbox to read new mail from."""

    host: str
    port: int = 993
    security: Literal["tls", "none"] = "tls"
    """``tls`` (implicit TLS, port 993) or ``none`` (a local server, tests)."""
    username: str
    password: SecretStr
    mailbox: str = "INBOX"
    batch_size: int = Field(default=50, ge=1, le=1000)
    """Messages fetched per round trip. Memory during a backfill grows with the square of the
    batch (aioimaplib parses a FETCH response recursively, one copy of the rest per message),
    so keep it small: 50 holds a few MiB."""
    idle: bool = True
    """Wait with IMAP IDLE when the server supports it; otherwise poll."""
    idle_timeout: float = 25 * 60
    """Restart IDLE after this many seconds (servers drop IDLE after 30 minutes)."""
    poll_interval: float = 60.0
    """Seconds between polls when IDLE is off or unsupported."""
    backoff_max: float = 300.0
    """Longest wait between reconnection attempts."""
    timeout: float = 60.0
    """Seconds to wait for any one IMAP command."""
    validate_certs: bool = True


class EmailConfig(_Config):
    """Configuration of the ``email`` channel."""

    address: str
    """Our mailbox: the From address and the channel's account, e.g. ``support@acme.example``."""
    from_name: str | None = None
    """Display name on sent mail, e.g. ``Acme Support``."""
    token_secret: SecretStr = Field(min_length=16)
    """Signs reply tokens and Message-IDs; keep it stable (changing it breaks old tokens)."""
    inbound_domain: str | None = None
    """Domain whose mail reaches us (``reply+<token>@<inbound_domain>`` goes in Reply-To);
    None sends no reply token (threading then relies on references and subjects)."""
    reply_prefix: str = "reply"
    message_id_domain: str | None = None
    """Right-hand side of our Message-IDs; defaults to the domain of ``address``."""
    default_subject: str = "Your message"
    """Subject of a new conversation started without one."""
    max_attachment_bytes: int = 25 * 1024 * 1024
    smtp: SmtpConfig | None = None
    imap: ImapConfig | None = None
    mailgun_signing_key: SecretStr | None = None
    """Enables ``/mailgun``: Mailgun's HTTP webhook signing key."""
    sendgrid_secret: SecretStr | None = None
    """Enables ``/sendgrid``: the secret in the URL (``/sendgrid/<secret>``) or the basic-auth
    password SendGrid's Inbound Parse URL carries."""
    postmark_username: str | None = None
    postmark_password: SecretStr | None = None
    """Enables ``/postmark``: the basic-auth credentials in Postmark's inbound webhook URL."""
    webhook_max_age: float = 300.0
    """Seconds a Mailgun timestamp stays valid."""
