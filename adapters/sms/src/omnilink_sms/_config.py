"""The SMS channel's settings: provider credentials, business numbers, webhook verification."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from omnilink import AddressError

from ._phone import to_e164

__all__ = ["SmsConfig", "SmsSender", "TwilioSettings", "VonageSettings"]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class TwilioSettings(_Settings):
    """Twilio credentials."""

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    """The account SID (``AC`` + 32 hex digits); part of every API path."""
    auth_token: SecretStr
    """Signs Twilio's webhooks; also authenticates API calls unless an API key is given."""
    api_key_sid: str | None = Field(default=None, pattern=r"^SK[0-9a-fA-F]{32}$")
    """An API key (``SK…``) to authenticate API calls instead of the auth token."""
    api_key_secret: SecretStr | None = None
    base_url: str = "https://api.twilio.com"

    @model_validator(mode="after")
    def _key_pair(self) -> TwilioSettings:
        if (self.api_key_sid is None) != (self.api_key_secret is None):
            raise ValueError("api_key_sid and api_key_secret go together")
        return self


class VonageSettings(_Settings):
    """Vonage (Nexmo) SMS API credentials."""

    api_key: str
    api_secret: SecretStr
    webhook_token: SecretStr | None = None
    """A secret the webhook URLs configured at Vonage carry as ``?token=…``; when set, Vonage
    webhooks without it are refused (the SMS API does not sign them unless configured to)."""
    base_url: str = "https://rest.nexmo.com"


class SmsSender(_Settings):
    """One business sender: a phone number or a Twilio messaging service.

    The sender is the ``account`` of every thread it carries.
    """

    number: str | None = None
    """The business number (any format ``phonenumbers`` parses; stored as E.164)."""
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    """A Twilio messaging service to send through instead of a single number."""
    provider: Literal["twilio", "vonage"] = "twilio"
    help_text: str | None = None
    """Answer to HELP/INFO on this sender (overrides the channel's ``help_text``)."""

    @model_validator(mode="after")
    def _one_identity(self) -> SmsSender:
        if (self.number is None) == (self.messaging_service_sid is None):
            raise ValueError("give exactly one of number or messaging_service_sid")
        if self.messaging_service_sid is not None and self.provider != "twilio":
            raise ValueError("messaging services exist only on Twilio")
        return self

    @property
    def account(self) -> str:
        return self.messaging_service_sid or self.number or ""


class SmsConfig(_Settings):
    """Settings of the ``sms`` channel."""

    default_region: str | None = None
    """ISO country code (``US``, ``DE`` …) for numbers written without ``+country``."""
    senders: tuple[SmsSender, ...] = Field(min_length=1)
    """Business numbers and messaging services; each is one ``account``."""
    default_sender: str | None = None
    """The sender used when a conversation is started without naming one (needed when several
    senders are configured)."""
    twilio: TwilioSettings | None = None
    vonage: VonageSettings | None = None
    public_url: str | None = None
    """This channel's public webhook base (e.g. ``https://hd.example/webhooks/sms``); overrides
    the Hub's public URL when a proxy rewrites paths. Twilio signs the URL it requested."""
    trust_forwarded_headers: bool = False
    """Rebuild the requested URL from X-Forwarded-Proto/Host when no public URL is known."""
    signature_mode: Literal["enforce", "log_only"] = "enforce"
    """``log_only`` accepts unsigned or mis-signed requests and logs them (for rollouts)."""
    status_callbacks: bool = True
    """Ask providers for delivery callbacks (needs a public URL)."""
    smart_encoding: bool = False
    """Replace look-alike characters so texts stay GSM-7 (reported in send details)."""
    help_text: str | None = None
    """Answer to HELP/INFO keywords (Twilio: returned as TwiML); None: no answer."""
    media_max_bytes_by_type: dict[str, int] = Field(
        default_factory=lambda: {
            "image": 5_000_000,
            "audio": 600_000,
            "video": 600_000,
            "file": 600_000,
        }
    )
    """Per-kind MMS size limits checked before sending. Twilio refuses more than 5 MB per
    message and transcodes images; for other kinds US carriers accept 0.6-1.5 MB, and Twilio
    recommends at most 600 KB."""

    @field_validator("senders")
    @classmethod
    def _numbers_in_e164(cls, senders: tuple[SmsSender, ...], info: ValidationInfo) -> tuple[SmsSender, ...]:
        region = info.data.get("default_region")
        out = []
        for sender in senders:
            if sender.number is not None:
                try:
                    sender = sender.model_copy(update={"number": to_e164(sender.number, region)})
                except AddressError as exc:
                    raise ValueError(str(exc)) from exc
            out.append(sender)
        accounts = [s.account for s in out]
        if len(set(accounts)) != len(accounts):
            raise ValueError(f"a sender is configured twice: {accounts}")
        return tuple(out)

    @model_validator(mode="after")
    def _providers_configured(self) -> SmsConfig:
        if self.default_sender is not None:
            wanted = self.default_sender
            if not wanted.startswith("MG"):
                try:
                    wanted = to_e164(wanted, self.default_region)
                except AddressError as exc:
                    raise ValueError(f"default_sender: {exc}") from exc
            if wanted not in {s.account for s in self.senders}:
                raise ValueError(f"default_sender {self.default_sender!r} is not one of the senders")
        for sender in self.senders:
            if sender.provider == "twilio" and self.twilio is None:
                raise ValueError(f"sender {sender.account} uses twilio but no twilio settings are given")
            if sender.provider == "vonage" and self.vonage is None:
                raise ValueError(f"sender {sender.account} uses vonage but no vonage settings are given")
        return self
