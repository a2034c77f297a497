"""The live-chat adapter kit: what the conformance suite and ``omnilink demo`` drive.

Live chat has no provider: the "fake" is a set of visitors. Their messages arrive through the
visitor HTTP API (which the Hub also serves as ``/webhooks/livechat/api/...``), signed with
visitor tokens the kit issues with the site's secret; what the channel pushes is observed by
listening connections the fake attaches to the channel, as a connected widget would be.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from starlette.routing import BaseRoute

from omnilink import DeliveryStatus, WebhookRequest
from omnilink.testing import AdapterKit, FakeProvider

from .._channel import Connection, LivechatChannel, Visitor
from .._tokens import issue_session_token, issue_visitor_token


class LiveVisitors(FakeProvider):
    """Visitors of one site: issues their tokens and records what the channel pushed to them."""

    hosts = ()

    def __init__(self, *, site: str, secret: str) -> None:
        super().__init__()
        self.site = site
        self.secret = secret
        self.pushed: list[dict[str, Any]] = []
        """Every frame pushed to an attached visitor, in order."""
        self._connections: dict[str, Connection] = {}
        self._owner: dict[str, str] = {}

    def routes(self) -> Sequence[BaseRoute]:
        return []

    def visitor(self, visitor_id: str) -> Visitor:
        """Credentials for a visitor: a token and a session derived from their id."""
        session_id = "ses_" + hashlib.sha256(visitor_id.encode()).hexdigest()[:24]
        return Visitor(
            visitor_id=visitor_id,
            token=issue_visitor_token(self.secret, visitor_id, self.now()),
            session_id=session_id,
            session_token=issue_session_token(self.secret, visitor_id, session_id),
        )

    def attach(self, channel: LivechatChannel, visitor_id: str) -> None:
        """Listen on the visitor's session like an open widget (no socket needed)."""
        if visitor_id not in self._connections:
            connection = Connection(self.visitor(visitor_id), buffer=10_000)
            channel.register(connection)
            self._connections[visitor_id] = connection

    def drain(self) -> list[dict[str, Any]]:
        """Collect frames pushed since the last call; returns every frame so far."""
        for visitor_id, connection in self._connections.items():
            while True:
                try:
                    text = connection.inbox.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                frame = json.loads(text)
                self.pushed.append(frame)
                if frame.get("provider_id"):
                    self._owner[str(frame["provider_id"])] = visitor_id
        return self.pushed

    def owner_of(self, provider_id: str) -> str | None:
        self.drain()
        return self._owner.get(provider_id)


class LivechatKit(AdapterKit):
    """Drives the ``livechat`` channel with scripted visitors (see ``LiveVisitors``)."""

    channel = "livechat"
    site = "conformance-site"
    secret = "conformance-secret-0123456789abcdef"

    def make_fakes(self) -> Sequence[FakeProvider]:
        return [LiveVisitors(site=self.site, secret=self.secret)]

    def channel_config(self, fakes: Sequence[FakeProvider]) -> Mapping[str, Any]:
        return {"site_id": self.site, "secret": self.secret}

    def customer_address(self, index: int) -> str:
        return f"vis_customer{index:06d}"

    def _visitors(self, fakes: Sequence[FakeProvider]) -> LiveVisitors:
        found = next((f for f in fakes if isinstance(f, LiveVisitors)), None)
        if found is None:
            raise TypeError("the livechat kit needs its LiveVisitors fake")
        return found

    def _request(self, path: str, visitor: Visitor, body: dict[str, Any]) -> WebhookRequest:
        return WebhookRequest.build(
            "POST",
            f"{self.public_url.rstrip('/')}/webhooks/{self.channel}{path}",
            {"authorization": f"Bearer {visitor.token}", "content-type": "application/json"},
            json.dumps({"session": visitor.session_token, **body}).encode(),
            path=path,
        )

    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        visitor = self._visitors(fakes).visitor(sender)
        # Client ids are short tokens: derive one from the provider id so a redelivery repeats it.
        client_id = hashlib.sha256(provider_message_id.encode()).hexdigest()[:32]
        return self._request("/api/messages", visitor, {"client_id": client_id, "text": text})

    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        frames = self._visitors(fakes).drain()
        return [str(f["text"]) for f in frames if f.get("type") == "message" and f.get("from") == "agent"]

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        visitors = self._visitors(fakes)
        owner = visitors.owner_of(provider_message_id)
        if owner is None:
            return None
        return self._request(
            "/api/receipts",
            visitors.visitor(owner),
            {"provider_id": provider_message_id, "status": status.value},
        )
