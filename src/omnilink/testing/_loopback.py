"""A complete reference channel, ``loopback``, and its fake provider.

It is small enough to read in one sitting and real enough to test the core against: a JSON
messaging API with bearer auth, a 160-character limit, one attachment per message, a lookup
endpoint for reconciling sends, and HMAC-signed batched webhooks. Plugin authors can copy its
shape; the core's own tests and the demo use it when no adapter is installed.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import _http
from .._capabilities import Capabilities, ChoiceCapabilities, MediaCapabilities
from .._channel import (
    Channel,
    ChannelContext,
    ChannelSpec,
    Inbound,
    InboundDeletion,
    InboundDelivery,
    InboundMessage,
    OutboundMessage,
    SendResult,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
)
from .._errors import (
    AddressError,
    CredentialsError,
    OutcomeUnknownError,
    PayloadError,
    PermanentSendError,
    RateLimitedError,
    RetryableSendError,
    SignatureError,
)
from .._models import DeliveryStatus, MediaPart, TextPart, text_of
from ..hookspecs import hookimpl
from ._fake import FakeProvider
from ._kit import AdapterKit

LOOPBACK_HOST = "api.loopback.test"
SIGNATURE_HEADER = "x-loopback-signature"
TEXT_MAX = 160

_STATUSES = {
    s.value
    for s in (
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.READ,
        DeliveryStatus.FAILED,
        DeliveryStatus.UNDELIVERED,
    )
}


def sign(secret: str, body: bytes) -> str:
    """The loopback webhook signature: lowercase hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class LoopbackConfig(BaseModel):
    """Settings of the loopback channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str
    """Bearer token for the provider API."""
    webhook_secret: str
    """Key of the HMAC-SHA256 webhook signature."""
    account: str = "biz"
    """Our address at the provider."""
    base_url: str = f"https://{LOOPBACK_HOST}"


LOOPBACK_CAPABILITIES = Capabilities(
    text_max=TEXT_MAX,
    media=MediaCapabilities(max_count=1, types=frozenset({"image", "file"}), max_bytes=5_000_000),
    quick_replies=ChoiceCapabilities(max_count=0),
    delivery_receipts=True,
    read_receipts=True,
    can_start_conversation=True,
)


class LoopbackChannel(Channel):
    """The reference channel: send over JSON, receive signed batched webhooks."""

    thread_history = 0  # sends never refer to earlier messages

    def __init__(self, config: LoopbackConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.cfg = config
        self.capabilities = LOOPBACK_CAPABILITIES

    @property
    def default_account(self) -> str:
        return self.cfg.account

    def normalize_address(self, address: str) -> str:
        cleaned = address.strip().lower()
        if not cleaned or not cleaned.replace("-", "").replace("_", "").isalnum():
            raise AddressError(
                f"{address!r} is not a loopback address (letters, digits, - and _)",
                channel=self.name,
                address=address,
            )
        return cleaned

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        if request.method != "POST":
            raise PayloadError("loopback webhooks are POST requests", channel=self.name, status=405)
        given = request.header(SIGNATURE_HEADER)
        expected = sign(self.cfg.webhook_secret, request.body).encode()
        if not given or not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
            raise SignatureError("missing or wrong X-Loopback-Signature", channel=self.name)
        try:
            payload = json.loads(request.body)
            events = payload["events"]
            items = [self._parse(event) for event in events]
        except (
            ValueError,
            KeyError,
            TypeError,
            ValidationError,
            OverflowError,
            OSError,
            RecursionError,
        ) as exc:
            raise PayloadError(f"not a loopback webhook payload: {exc}", channel=self.name) from exc
        return WebhookResult(WebhookResponse.text("ok"), items)

    def _parse(self, event: dict[str, Any]) -> Inbound:
        at = datetime.fromtimestamp(int(event["ts"]) / 1000, UTC)
        if event["type"] == "message":
            parts: list[Any] = []
            if event.get("text"):
                parts.append(TextPart(text=str(event["text"])))
            if event.get("media"):
                parts.append(
                    MediaPart(url=str(event["media"]["url"]), content_type=str(event["media"]["type"]))
                )
            sender = self.normalize_address(str(event["from"]))
            return InboundMessage(
                account=str(event["to"]),
                thread_key=sender,
                sender=sender,
                sender_name=event.get("name"),
                provider_message_id=str(event["id"]),
                parts=tuple(parts),
                sent_at=at,
                reply_to_provider_id=event.get("reply_to"),
                raw=event,
            )
        if event["type"] == "status" and event["status"] in _STATUSES:
            return InboundDelivery(
                account=str(event["account"]),
                provider_message_id=str(event["id"]),
                status=DeliveryStatus(event["status"]),
                at=at,
                error=event.get("error"),
                raw=event,
            )
        if event["type"] == "delete":
            return InboundDeletion(
                account=str(event["account"]), provider_message_id=str(event["id"]), at=at, raw=event
            )
        raise ValueError(f"unknown event type {event.get('type')!r}")

    async def send(self, outbound: OutboundMessage) -> SendResult:
        body: dict[str, Any] = {
            "from": outbound.account,
            "to": outbound.recipient,
            "text": text_of(outbound.parts),
            "client_ref": outbound.idempotency_key,
        }
        media = [p for p in outbound.parts if isinstance(p, MediaPart)]
        if media:
            body["media"] = {"url": media[0].url, "type": media[0].content_type}
        try:
            response = await self.context.http.post(
                f"{self.cfg.base_url}/v1/messages",
                json=body,
                headers={"authorization": f"Bearer {self.cfg.token}"},
            )
        except _http.ConnectTimeout as exc:
            raise RetryableSendError(f"loopback not reached: {exc}", channel=self.name) from exc
        except _http.TimeoutException as exc:
            raise OutcomeUnknownError(f"loopback send timed out: {exc}", channel=self.name) from exc
        except _http.ConnectError as exc:
            raise RetryableSendError(f"loopback unreachable: {exc}", channel=self.name) from exc
        except _http.TransportError as exc:
            # The connection broke after the request may have reached the provider.
            raise OutcomeUnknownError(f"loopback connection lost: {exc}", channel=self.name) from exc
        return self._result(response)

    def _result(self, response: _http.Response) -> SendResult:
        if response.status_code in (200, 201):
            return SendResult(provider_message_id=str(response.json()["id"]), status=DeliveryStatus.SENT)
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        code, text = str(error.get("code", response.status_code)), str(error.get("message", response.text))
        if response.status_code == 401:
            raise CredentialsError(
                f"loopback refused the token: {text}", channel=self.name, provider_code=code
            )
        if response.status_code == 429:
            retry = float(response.headers.get("retry-after", "1"))
            raise RateLimitedError(text, channel=self.name, provider_code=code, retry_after=retry)
        if response.status_code >= 500:
            raise RetryableSendError(
                text,
                channel=self.name,
                provider_code=code,
                retry_after=float(response.headers.get("retry-after", "0") or 0),
            )
        raise PermanentSendError(text, channel=self.name, provider_code=code)

    async def reconcile(self, outbound: OutboundMessage) -> SendResult | None:
        response = await self.context.http.get(
            f"{self.cfg.base_url}/v1/messages",
            params={"client_ref": outbound.idempotency_key},
            headers={"authorization": f"Bearer {self.cfg.token}"},
        )
        if response.status_code == 404:
            return None
        return self._result(response)


def _factory(config: LoopbackConfig, context: ChannelContext) -> LoopbackChannel:
    return LoopbackChannel(config, context)


LOOPBACK_SPEC = ChannelSpec(
    name="loopback",
    config_model=LoopbackConfig,
    factory=_factory,
    capabilities=LOOPBACK_CAPABILITIES,
    summary="Reference channel for tests and demos (bundled with omnilink.testing)",
)


class LoopbackPlugin:
    """Registers the loopback channel and its kit; pass an instance in ``Hub(plugins=[...])``."""

    @hookimpl
    def omnilink_channels(self) -> list[ChannelSpec]:
        return [LOOPBACK_SPEC]

    @hookimpl
    def omnilink_adapter_kits(self) -> list[AdapterKit]:
        return [LoopbackKit()]


class FakeLoopback(FakeProvider):
    """The loopback provider: enforces its token, length and address rules; records sends."""

    hosts = (LOOPBACK_HOST,)

    def __init__(
        self, *, token: str = "tok", webhook_secret: str = "whsec", account: str = "biz", **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.token = token
        self.webhook_secret = webhook_secret
        self.account = account
        self.sent: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.opted_out: set[str] = set()

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/v1/messages", self._messages, methods=["POST", "GET"])]

    def _error(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=status, headers=headers
        )

    async def _messages(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, 1, "invalid token")
        if request.method == "GET":
            ref = request.query_params.get("client_ref")
            for item in self.sent:
                if item["client_ref"] == ref:
                    return JSONResponse({"id": item["id"], "status": "sent"})
            return self._error(404, 4, "no such message")
        fault = self.take_fault("messages")
        if fault is not None:
            return JSONResponse(
                fault.body or {"error": {"code": fault.status, "message": "injected"}},
                status_code=fault.status,
                headers=fault.headers,
            )
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, 2, "body is not JSON")
        text, to = body.get("text") or "", str(body.get("to", ""))
        if body.get("from") != self.account:
            return self._error(400, 3, f"from {body.get('from')!r} is not your account")
        if not to or not to.replace("-", "").replace("_", "").isalnum():
            return self._error(400, 5, f"invalid recipient {to!r}")
        if to in self.opted_out:
            return self._error(400, 6, f"{to} opted out")
        if len(text) > TEXT_MAX:
            return self._error(400, 7, f"text is {len(text)} characters; the limit is {TEXT_MAX}")
        if not text and not body.get("media"):
            return self._error(400, 8, "empty message")
        item = {
            "id": f"lb_{next(self._ids)}",
            "to": to,
            "text": text,
            "media": body.get("media"),
            "client_ref": body.get("client_ref"),
            "at": self.now(),
        }
        self.sent.append(item)
        return JSONResponse({"id": item["id"], "status": "sent"}, status_code=201)

    # ---- webhooks the provider sends

    def webhook(
        self,
        events: Sequence[dict[str, Any]],
        *,
        secret: str | None = None,
        url: str = "https://helpdesk.example/webhooks/loopback",
    ) -> WebhookRequest:
        """A signed webhook request carrying ``events``."""
        body = json.dumps({"events": list(events)}).encode()
        signature = sign(secret or self.webhook_secret, body)
        return WebhookRequest.build(
            "POST", url, {SIGNATURE_HEADER: signature, "content-type": "application/json"}, body
        )

    def message_event(
        self,
        sender: str,
        text: str,
        message_id: str | None = None,
        *,
        name: str | None = None,
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """A customer message event, as the provider would send it."""
        event: dict[str, Any] = {
            "type": "message",
            "id": message_id or f"in_{next(self._ids)}",
            "from": sender,
            "to": self.account,
            "text": text,
            "ts": int(self.now().timestamp() * 1000),
        }
        if name:
            event["name"] = name
        if reply_to:
            event["reply_to"] = reply_to
        return event

    def status_event(self, provider_id: str, status: str, error: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "status",
            "id": provider_id,
            "status": status,
            "account": self.account,
            "ts": int(self.now().timestamp() * 1000),
        }
        if error:
            event["error"] = error
        return event

    def delete_event(self, message_id: str) -> dict[str, Any]:
        """The customer deleted message ``message_id`` (an id from ``message_event``)."""
        return {
            "type": "delete",
            "id": message_id,
            "account": self.account,
            "ts": int(self.now().timestamp() * 1000),
        }


class LoopbackKit(AdapterKit):
    """Drives the loopback channel against ``FakeLoopback`` (the demo and the core's tests)."""

    channel = "loopback"

    def make_fakes(self) -> Sequence[FakeProvider]:
        return [FakeLoopback()]

    def _fake(self, fakes: Sequence[FakeProvider]) -> FakeLoopback:
        fake = fakes[0]
        assert isinstance(fake, FakeLoopback)
        return fake

    def channel_config(self, fakes: Sequence[FakeProvider]) -> dict[str, Any]:
        fake = self._fake(fakes)
        return {"token": fake.token, "webhook_secret": fake.webhook_secret, "account": fake.account}

    def customer_address(self, index: int) -> str:
        return f"customer-{index}"

    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        fake = self._fake(fakes)
        return fake.webhook([fake.message_event(sender, text, provider_message_id)], url=self._url())

    def batch_request(
        self, fakes: Sequence[FakeProvider], messages: Sequence[tuple[str, str, str]]
    ) -> WebhookRequest | None:
        fake = self._fake(fakes)
        return fake.webhook([fake.message_event(s, t, pid) for s, t, pid in messages], url=self._url())

    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        return [str(item["text"]) for item in self._fake(fakes).sent]

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        fake = self._fake(fakes)
        return fake.webhook([fake.status_event(provider_message_id, status.value)], url=self._url())

    def _url(self) -> str:
        return f"{self.public_url}/webhooks/loopback"
