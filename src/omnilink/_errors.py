"""The exception tree of omnilink: every error the library raises derives from OmnilinkError.

```
OmnilinkError
├── ConfigurationError            bad settings, unknown channel, broken plugin (strict mode)
│   └── PluginError               a plugin failed to load or registered something invalid
├── LifecycleError                a Hub or resource used outside its open/closed lifetime
├── BackendUnsupportedError       a component bound to one async backend used on another
├── InvalidInputError             input we were handed is malformed
│   ├── WebhookError              a webhook request we must refuse (carries the HTTP status)
│   │   ├── SignatureError        missing or wrong signature, stale or replayed token
│   │   └── PayloadError          signed, but not a payload the provider would send
│   ├── AddressError              an address that is not valid for its channel
│   ├── ContentError              content no plan can make fit the channel
│   └── ModelError                data that does not validate against a canonical model
├── NotFoundError                 an id that names nothing in the store
├── StoreError                    the store failed or its schema is not what we expect
├── PolicyRefusal                 a send refused before any request (window, opt-out …)
│   ├── WindowClosedError         outside the channel's messaging window
│   └── OptedOutError             the recipient opted out on this channel
└── SendError                     the provider refused or failed a send
    ├── RetryableSendError        try again later (carries retry_after)
    │   └── RateLimitedError      the provider asked us to slow down
    ├── PermanentSendError        will never succeed as it is
    │   └── RecipientUnavailableError   the recipient cannot receive on this channel now
    ├── CredentialsError          credentials invalid, expired or revoked
    └── OutcomeUnknownError       we cannot tell whether the provider accepted the send
```

Errors carry context as attributes (``channel``, ``provider_code``, ``request_id``,
``retry_after``) so a helpdesk can act on them without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class OmnilinkError(Exception):
    """Root of every exception raised by omnilink."""


class ConfigurationError(OmnilinkError):
    """Settings that cannot work: an unknown channel, an invalid config, a duplicate name."""


class PluginError(ConfigurationError):
    """A plugin failed to load or registered something invalid."""

    def __init__(self, message: str, *, distribution: str | None = None) -> None:
        super().__init__(message)
        self.distribution = distribution


class LifecycleError(OmnilinkError):
    """An object was used outside its lifetime (before opening, after closing, reopened)."""


class BackendUnsupportedError(OmnilinkError):
    """A component bound to one async backend (e.g. asyncio) was used on another."""


class InvalidInputError(OmnilinkError):
    """Input handed to omnilink is malformed; nothing was stored."""


class WebhookError(InvalidInputError):
    """A webhook request that must be refused; ``status`` is the HTTP status to answer."""

    status: int = 400

    def __init__(self, message: str, *, channel: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.channel = channel
        if status is not None:
            self.status = status


class SignatureError(WebhookError):
    """The request's signature is missing or wrong, its timestamp stale, or its token replayed."""

    status = 403


class PayloadError(WebhookError):
    """The request is authentic but its body is not a payload the provider would send."""

    status = 400


class AddressError(InvalidInputError):
    """An address that is not valid for its channel (a phone number, an email address …)."""

    def __init__(self, message: str, *, channel: str | None = None, address: str | None = None) -> None:
        super().__init__(message)
        self.channel = channel
        self.address = address


class ContentError(InvalidInputError):
    """Content that no plan can make fit the channel (e.g. an attachment over the size limit)."""


class ModelError(InvalidInputError):
    """Data that does not validate against a canonical model."""


class NotFoundError(OmnilinkError):
    """An id that names nothing in the store."""


class StoreError(OmnilinkError):
    """The store failed, or its schema is not the version this code expects."""


@dataclass(frozen=True)
class Remedy:
    """One way to get a refused message through, e.g. another channel or a message tag."""

    kind: str
    """What to do: ``"use_channel"``, ``"use_tag"``, ``"wait"``, ``"ask_opt_in"`` …"""
    detail: str
    """A sentence for the helpdesk's user."""
    channel: str | None = None
    """The channel this remedy means, where it names one."""


class PolicyRefusal(OmnilinkError):
    """A send was refused by a channel rule before any request was made.

    ``remedies`` lists what the helpdesk can do instead.
    """

    def __init__(
        self, message: str, *, channel: str, remedies: Sequence[Remedy] = (), rule: str = "policy"
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.remedies = tuple(remedies)
        self.rule = rule


class WindowClosedError(PolicyRefusal):
    """The channel's messaging window is closed for this recipient."""


class OptedOutError(PolicyRefusal):
    """The recipient opted out of messages on this channel (e.g. replied STOP to an SMS)."""


class SendError(OmnilinkError):
    """The provider refused or failed a send."""

    def __init__(
        self,
        message: str,
        *,
        channel: str | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.provider_code = provider_code
        self.request_id = request_id


class RetryableSendError(SendError):
    """A send that may succeed later; ``retry_after`` is the provider's hint in seconds."""

    def __init__(
        self,
        message: str,
        *,
        channel: str | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, channel=channel, provider_code=provider_code, request_id=request_id)
        self.retry_after = retry_after


class RateLimitedError(RetryableSendError):
    """The provider asked us to slow down."""


class PermanentSendError(SendError):
    """A send that will never succeed as it is (invalid recipient, content refused …)."""


class RecipientUnavailableError(PermanentSendError):
    """The recipient cannot receive messages on this channel right now."""


class CredentialsError(SendError):
    """The channel's credentials are invalid, expired or revoked; dispatch pauses."""


class OutcomeUnknownError(SendError):
    """We cannot tell whether the provider accepted the send (a timeout after the request)."""
