"""The Messenger channel: webhooks in, Send API out, the messaging window in between."""

from __future__ import annotations

import hmac
from typing import Any

import httpx

from omnilink import (
    AddressError,
    ButtonsPart,
    Capabilities,
    Channel,
    ChannelContext,
    ChoiceCapabilities,
    ConfigurationError,
    ContentError,
    MediaCapabilities,
    MediaPart,
    Message,
    MessagingWindow,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentSendError,
    QuickRepliesPart,
    RetryableSendError,
    SendContext,
    SendResult,
    SignatureError,
    TextPart,
    WebhookError,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
    split_text,
)

from ._config import MessengerConfig, MessengerPage
from ._errors import error_from_response
from ._parse import parse_payload
from ._render import (
    ATTACHMENT_MAX_BYTES,
    BUTTON_TEXT_MAX,
    BUTTONS_MAX,
    CHOICE_TITLE_MAX,
    IMAGE_URL_MAX_BYTES,
    PAYLOAD_MAX,
    QUICK_REPLIES_MAX,
    TEXT_MAX,
    message_object,
    send_body,
)
from ._signature import SIGNATURE_HEADER, verify_signature
from ._window import HUMAN_AGENT_WINDOW, STANDARD_WINDOW, window_options

CAPABILITIES = Capabilities(
    text_max=TEXT_MAX,
    length_unit="characters",
    media=MediaCapabilities(
        max_count=1,
        types=frozenset({"image", "audio", "video", "file"}),
        max_bytes=ATTACHMENT_MAX_BYTES,
        max_bytes_by_type={"image": IMAGE_URL_MAX_BYTES},
        with_text=False,
    ),
    quick_replies=ChoiceCapabilities(max_count=QUICK_REPLIES_MAX, title_max=CHOICE_TITLE_MAX),
    buttons=ChoiceCapabilities(max_count=BUTTONS_MAX, title_max=CHOICE_TITLE_MAX),
    typing=True,
    read_receipts=True,
    delivery_receipts=True,
    reply_to=False,
    reactions=True,
    can_start_conversation=False,
    thread_by_key=True,
    window=MessagingWindow(
        standard=STANDARD_WINDOW, extended=HUMAN_AGENT_WINDOW, extended_by="HUMAN_AGENT tag"
    ),
)
"""What Messenger can carry: 2,000 characters of text, one attachment per message (25 MB,
images 8 MB), 13 quick replies and 3 buttons with 20-character titles, a 24-hour window."""


class MessengerChannel(Channel):
    """Facebook Messenger through the Graph API, for one app and any number of pages."""

    thread_history = 0  # sends never refer to earlier messages

    capabilities = CAPABILITIES
    config: MessengerConfig

    def __init__(self, config: MessengerConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self._secret = config.app_secret.get_secret_value().encode()
        self._verify_token = config.verify_token.get_secret_value().encode()
        self._endpoint = f"{config.graph_base_url}/{config.graph_version}/me/messages"

    # ------------------------------------------------------------------ receiving

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        """Answer Meta's verification handshake (GET) or verify and parse a batch (POST)."""
        if request.method == "GET":
            return WebhookResult(self._handshake(request))
        if request.method != "POST":
            raise WebhookError(f"method {request.method} not allowed", channel=self.name, status=405)
        if not verify_signature(self._secret, request.body, request.header(SIGNATURE_HEADER)):
            raise SignatureError(
                "missing or wrong X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app secret)",
                channel=self.name,
            )
        items = parse_payload(request.body, app_id=self.config.app_id)
        return WebhookResult(WebhookResponse.text("EVENT_RECEIVED"), items)

    def _handshake(self, request: WebhookRequest) -> WebhookResponse:
        q = request.query
        token = q.get("hub.verify_token", "").encode()
        challenge = q.get("hub.challenge")
        if q.get("hub.mode") != "subscribe" or challenge is None:
            raise SignatureError("not a subscription handshake", channel=self.name)
        if not hmac.compare_digest(token, self._verify_token):
            raise SignatureError("wrong hub.verify_token", channel=self.name)
        return WebhookResponse.text(challenge)

    # ------------------------------------------------------------------ policy

    def normalize_address(self, address: str) -> str:
        """A PSID: the digits Meta assigned the customer on one page."""
        value = address.strip()
        if not value.isascii() or not value.isdigit():
            raise AddressError(
                f"{address!r} is not a page-scoped id (PSID): expected digits",
                channel=self.name,
                address=address,
            )
        return value

    def _page(self, page_id: str) -> MessengerPage:
        page = self.config.page(page_id)
        if page is None:
            raise ConfigurationError(f"page {page_id!r} is not connected to the messenger channel")
        return page

    async def check_send(self, context: SendContext) -> dict[str, str]:
        """Allow a send inside the window and say how (``RESPONSE`` or the ``HUMAN_AGENT`` tag)."""
        page = self._page(context.thread.account)
        return window_options(
            channel=self.name,
            page_id=page.page_id,
            last_inbound_at=context.last_inbound_at,
            now=context.now,
            author_kind=context.author.kind,
            automatic=context.automatic,
            human_agent_enabled=page.human_agent_enabled,
            other_channels=context.other_channels,
        )

    # ------------------------------------------------------------------ sending

    async def send(self, outbound: OutboundMessage) -> SendResult:
        """Send one planned message; its metadata carries the omnilink message id for echoes.

        Content Meta would refuse (over a limit the planner did not know) fails permanently
        before any request, as a PermanentSendError.
        """
        page = self.config.page(outbound.account)
        if page is None:
            raise PermanentSendError(
                f"page {outbound.account!r} is not connected to the messenger channel", channel=self.name
            )
        if len(outbound.parts) != 1:
            raise PermanentSendError(
                f"a Messenger message carries one part; got {len(outbound.parts)} (plan the content first)",
                channel=self.name,
            )
        part = outbound.parts[0]
        try:
            _check_limits(part)
        except ContentError as exc:
            # At dispatch time content that Meta refuses is a permanent failure of this send.
            raise PermanentSendError(
                f"Messenger would refuse this message: {exc}", channel=self.name
            ) from exc
        extra: list[str] = []
        if isinstance(part, ButtonsPart) and len(part.text) > BUTTON_TEXT_MAX:
            # The button template holds 640 characters: the text before it goes out first.
            pieces = split_text(part.text, BUTTON_TEXT_MAX)
            head, tail = "".join(pieces[:-1]), pieces[-1]
            for chunk in split_text(head, TEXT_MAX):
                sent = await self._send_message(page, outbound, message_object(TextPart(text=chunk)))
                extra.append(sent["message_id"])
            part = part.model_copy(update={"text": tail})
        result = await self._send_message(page, outbound, message_object(part))
        details = {"recipient_id": str(result.get("recipient_id", outbound.recipient))}
        if extra:
            details["extra_provider_ids"] = ",".join(extra)
        return SendResult(provider_message_id=result["message_id"], details=details)

    async def _send_message(
        self, page: MessengerPage, outbound: OutboundMessage, message: dict[str, Any]
    ) -> dict[str, str]:
        options = outbound.send_options or {"messaging_type": "RESPONSE"}
        body = send_body(outbound.recipient, message, options, outbound.message_id)
        doc = await self._post(page, body)
        mid = doc.get("message_id")
        if not isinstance(mid, str) or not mid:
            raise OutcomeUnknownError(
                "Messenger answered without a message_id; the send may or may not have happened",
                channel=self.name,
            )
        return {"message_id": mid, "recipient_id": str(doc.get("recipient_id", ""))}

    async def _post(self, page: MessengerPage, body: dict[str, Any]) -> dict[str, Any]:
        token = page.access_token.get_secret_value()
        try:
            resp = await self.context.http.post(
                self._endpoint, params={"access_token": token}, json=body, timeout=self.config.timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RetryableSendError(
                f"could not reach the Graph API: {type(exc).__name__}", channel=self.name
            ) from exc
        except httpx.TransportError as exc:
            raise OutcomeUnknownError(
                f"the Graph API did not answer ({type(exc).__name__}); the send may have happened",
                channel=self.name,
            ) from exc
        if resp.status_code >= 400:
            raise error_from_response(resp.status_code, resp.content, resp.headers) from None
        try:
            doc = resp.json()
        except ValueError as exc:
            raise OutcomeUnknownError(
                "the Graph API answered with a body that is not JSON", channel=self.name
            ) from exc
        if not isinstance(doc, dict):
            raise OutcomeUnknownError("the Graph API answered with an unexpected body", channel=self.name)
        return doc

    async def send_typing(self, account: str, thread_key: str, on: bool) -> None:
        """Show or hide the typing indicator (``typing_on`` / ``typing_off``)."""
        await self.sender_action(account, thread_key, "typing_on" if on else "typing_off")

    async def mark_read(self, message: Message) -> None:
        """An agent read the customer's messages: the page marks them seen (``mark_seen``)."""
        await self.mark_seen(message.account, message.thread_key)

    async def mark_seen(self, account: str, thread_key: str) -> None:
        """Mark the customer's latest message as seen by the page (``mark_seen``)."""
        await self.sender_action(account, thread_key, "mark_seen")

    async def sender_action(self, account: str, thread_key: str, action: str) -> None:
        """Send a sender action alone with its recipient, as Meta requires."""
        if action not in ("typing_on", "typing_off", "mark_seen"):
            raise ValueError(f"unknown sender action {action!r}")
        page = self._page(account)
        await self._post(page, {"recipient": {"id": thread_key}, "sender_action": action})


def _check_limits(part: object) -> None:
    """Refuse content Meta would refuse, before spending a request."""
    if isinstance(part, TextPart | QuickRepliesPart | ButtonsPart) and not part.text.strip():
        raise ContentError(f"Messenger needs non-empty text for a {part.kind} message")
    if isinstance(part, TextPart) and len(part.text) > TEXT_MAX:
        raise ContentError(f"text of {len(part.text)} characters; Messenger accepts {TEXT_MAX}")
    if isinstance(part, QuickRepliesPart):
        if len(part.text) > TEXT_MAX:
            raise ContentError(f"quick-reply prompt of {len(part.text)} characters; the limit is {TEXT_MAX}")
        if len(part.replies) > QUICK_REPLIES_MAX:
            raise ContentError(f"{len(part.replies)} quick replies; Messenger accepts {QUICK_REPLIES_MAX}")
        _check_choices([(r.title, r.payload) for r in part.replies])
    if isinstance(part, ButtonsPart):
        if len(part.buttons) > BUTTONS_MAX:
            raise ContentError(f"{len(part.buttons)} buttons; a button template holds {BUTTONS_MAX}")
        _check_choices([(b.title, None if b.url else b.payload) for b in part.buttons])
    if isinstance(part, MediaPart) and part.size is not None:
        limit = IMAGE_URL_MAX_BYTES if part.media_type == "image" else ATTACHMENT_MAX_BYTES
        if part.size > limit:
            raise ContentError(
                f"{part.media_type} of {part.size} bytes; Messenger accepts at most {limit} bytes"
            )


def _check_choices(choices: list[tuple[str, str | None]]) -> None:
    for title, payload in choices:
        if len(title) > CHOICE_TITLE_MAX:
            raise ContentError(f"title {title!r} is longer than {CHOICE_TITLE_MAX} characters")
        if payload is not None and len(payload) > PAYLOAD_MAX:
            raise ContentError(f"the payload of {title!r} is longer than {PAYLOAD_MAX} characters")
