"""Settings of the X channel: the account, its credentials, and how it receives."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class TwitterConfig(BaseModel):
    """One X account (a user id) the helpdesk answers as.

    Give OAuth 1.0a user tokens (``access_token`` + ``access_token_secret``) or OAuth 2.0 user
    tokens (``oauth2_access_token``, with ``oauth2_refresh_token`` + ``oauth2_client_id`` to
    refresh them). ``consumer_secret`` is needed in both cases: X signs webhooks and CRC
    challenges with it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    user_id: str = Field(pattern=r"^\d{1,20}$")
    """Our account's numeric user id: the ``account`` of every thread."""
    screen_name: str | None = None
    """Our @handle without the ``@``, for display and DM invitations."""
    consumer_key: str
    consumer_secret: SecretStr
    """The app's API secret: signs OAuth 1.0a requests, webhooks and CRC answers."""
    access_token: str | None = None
    """OAuth 1.0a user access token."""
    access_token_secret: SecretStr | None = None
    oauth2_access_token: SecretStr | None = None
    """OAuth 2.0 user access token (Authorization Code with PKCE); preferred when set."""
    oauth2_refresh_token: SecretStr | None = None
    oauth2_client_id: str | None = None
    oauth2_client_secret: SecretStr | None = None
    """Only for confidential OAuth 2.0 clients (then sent with HTTP Basic on refresh)."""
    api_base: str = "https://api.x.com"
    """Base URL of the X API v2 (``https://api.twitter.com`` works too)."""
    poll_dms: bool = False
    """Poll ``GET /2/dm_events`` instead of (or besides) Account Activity webhooks."""
    poll_mentions: bool = False
    """Poll ``GET /2/users/{id}/mentions`` for public mentions and replies."""
    poll_interval: float = Field(default=60.0, gt=0)
    """Seconds between polls."""
    max_rate_wait: float = Field(default=30.0, ge=0)
    """Longest we wait for a known-exhausted rate budget to reset before a send; beyond it the
    send fails with RateLimitedError so the Hub retries later."""
    usage_cap_retry_after: float = Field(default=6 * 3600.0, gt=0)
    """retry_after given with a usage-capped send (X's monthly cap; see the docs page)."""

    @model_validator(mode="after")
    def _has_credentials(self) -> TwitterConfig:
        oauth1 = self.access_token is not None and self.access_token_secret is not None
        if not oauth1 and self.oauth2_access_token is None:
            raise ValueError(
                "give OAuth 1.0a user tokens (access_token, access_token_secret) "
                "or an OAuth 2.0 user token (oauth2_access_token)"
            )
        if self.oauth2_refresh_token is not None and self.oauth2_client_id is None:
            raise ValueError("oauth2_refresh_token needs oauth2_client_id to refresh")
        return self

    @property
    def uses_oauth2(self) -> bool:
        return self.oauth2_access_token is not None
