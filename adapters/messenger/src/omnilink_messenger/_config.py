"""Settings of the Messenger channel: one Meta app, one or more connected pages."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class MessengerPage(BaseModel):
    """One Facebook page connected to the channel."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    page_id: str = Field(min_length=1, pattern=r"^[0-9]+$")
    """The page's numeric id; it is the ``account`` of every thread on this page."""
    access_token: SecretStr
    """The page access token (needs the ``pages_messaging`` permission)."""
    human_agent_enabled: bool = False
    """Whether the app was approved for the ``HUMAN_AGENT`` tag on this page: human agents
    may then answer up to 7 days after the customer's last message instead of 24 hours."""


class MessengerConfig(BaseModel):
    """Settings of the ``messenger`` channel."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    app_secret: SecretStr
    """The Meta app secret; webhooks are signed with it (``X-Hub-Signature-256``)."""
    verify_token: SecretStr
    """The token you typed into the app dashboard; answers the GET verification handshake."""
    pages: tuple[MessengerPage, ...] = Field(min_length=1)
    """The connected pages, each with its own token and settings."""
    graph_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    """The Graph API version to call, e.g. ``v21.0``."""
    graph_base_url: str = "https://graph.facebook.com"
    """The Graph API base URL (a fake's URL in tests)."""
    app_id: str | None = None
    """The Meta app id. When set, only echoes carrying this ``app_id`` are taken as our own
    sends; when unset, any echo whose metadata names a message is taken as ours."""
    timeout: float = Field(default=20.0, gt=0)
    """Seconds to wait for the Send API before the outcome of a send is unknown."""

    @field_validator("graph_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _unique_pages(self) -> MessengerConfig:
        ids = [p.page_id for p in self.pages]
        if len(ids) != len(set(ids)):
            raise ValueError("each page_id may appear only once in pages")
        return self

    def page(self, page_id: str) -> MessengerPage | None:
        """The settings of one page, or None when it is not connected."""
        for page in self.pages:
            if page.page_id == page_id:
                return page
        return None
