"""The email channel: SMTP out, IMAP and inbound-parse webhooks in."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

import anyio
import httpx
from anyio.abc import TaskStatus

from omnilink import (
    AddressError,
    Capabilities,
    Channel,
    ChannelContext,
    ContentError,
    Direction,
    HtmlPart,
    InboundDelivery,
    InboundMessage,
    MediaCapabilities,
    MediaPart,
    OutboundMessage,
    PayloadError,
    PermanentSendError,
    PolicyRefusal,
    Remedy,
    RetryableSendError,
    SendContext,
    SendResult,
    SignatureError,
    TextPart,
    WebhookError,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
)

from ._compose import compose_message, validate_address
from ._config import EmailConfig
from ._imap import ImapPoller
from ._mime import NotAnEmailError
from ._parse import parse_inbound
from ._smtp import require_asyncio, send_smtp
from ._tokens import make_message_id, reply_address
from ._webhooks import basic_auth, mailgun_mime, mailgun_signature, parse_form, postmark_mime, sendgrid_mime

__all__ = ["EMAIL_CAPABILITIES", "EmailChannel"]

EMAIL_CAPABILITIES = Capabilities(
    text_max=None,
    markup="html",
    subjects=True,
    thread_by_key=False,
    reply_to=True,
    delivery_receipts=True,
    can_start_conversation=True,
    media=MediaCapabilities(
        max_count=20, types=frozenset({"image", "audio", "video", "file"}), max_bytes=25 * 1024 * 1024
    ),
)
"""What email carries: any length, HTML, subjects, up to 20 attachments of 25 MB."""

_NO_REPLY = {"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply"}
_TOKENS_KEY = "mailgun:tokens"


class EmailChannel(Channel):
    """Email: sends over SMTP, receives over IMAP (``run``) and Mailgun/SendGrid/Postmark webhooks.

    SMTP and IMAP use asyncio-only libraries: with either configured, ``open`` raises
    ``BackendUnsupportedError`` on trio. Webhook handling works on any backend.
    """

    config: EmailConfig

    def __init__(self, config: EmailConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.config = config
        self.capabilities = EMAIL_CAPABILITIES.model_copy(
            update={
                "media": EMAIL_CAPABILITIES.media.model_copy(
                    update={"max_bytes": config.max_attachment_bytes}
                )
            }
        )
        self._account = validate_address(config.address)
        self._secret = config.token_secret.get_secret_value()
        self._domain = config.message_id_domain or self._account.rpartition("@")[2]
        self._token_lock: anyio.Lock | None = None
        self.imap_poller: ImapPoller | None = None
        """The running IMAP poller, once ``run`` started it."""

    # ------------------------------------------------------------------ contract

    @property
    def default_account(self) -> str:
        return self._account

    @property
    def has_background_work(self) -> bool:
        return self.config.imap is not None

    async def open(self) -> None:
        if self.config.smtp is not None or self.config.imap is not None:
            require_asyncio("the email channel's SMTP/IMAP support")

    def normalize_address(self, address: str) -> str:
        return validate_address(address, channel=self.name)

    async def check_send(self, context: SendContext) -> dict[str, str]:
        local = context.thread.key.partition("@")[0].lower()
        if context.automatic and local in _NO_REPLY:
            raise PolicyRefusal(
                f"refusing an automatic message to {context.thread.key}: answering robots makes mail loops",
                channel=self.name,
                rule="automatic_to_robot",
                remedies=[Remedy("human_reply", "Have a person decide whether this needs an answer.")],
            )
        if context.automatic:
            history = await self.context.thread_messages(context.thread.account, context.thread.key, 20)
            last_inbound = next((m for m in reversed(history) if m.direction is Direction.INBOUND), None)
            if last_inbound is not None and last_inbound.automatic:
                raise PolicyRefusal(
                    "refusing to answer an auto-reply or bounce automatically (mail loop)",
                    channel=self.name,
                    rule="answer_to_automatic",
                    remedies=[Remedy("human_reply", "Have a person decide whether this needs an answer.")],
                )
        return {}

    async def send(self, outbound: OutboundMessage) -> SendResult:
        smtp = self.config.smtp
        if smtp is None:
            raise PermanentSendError("the email channel has no SMTP server configured", channel=self.name)
        outbound = await self._with_original_parts(outbound)
        attachments = {
            part.url: await self._attachment(part) for part in outbound.parts if isinstance(part, MediaPart)
        }
        message_id = make_message_id(
            self._secret, outbound.conversation_id, self._domain, stable_key=outbound.idempotency_key
        )
        reply_to = (
            reply_address(
                self._secret, outbound.conversation_id, self.config.inbound_domain, self.config.reply_prefix
            )
            if self.config.inbound_domain
            else None
        )
        try:
            msg = compose_message(
                outbound,
                from_address=self._account,
                from_name=self.config.from_name,
                message_id=message_id,
                date=self.context.now(),
                reply_to=reply_to,
                default_subject=self.config.default_subject,
                attachments=attachments,
            )
        except (ContentError, AddressError) as exc:
            raise PermanentSendError(f"cannot build the email: {exc}", channel=self.name) from exc
        reply = await send_smtp(
            smtp,
            msg,
            sender=self._account,
            recipients=[validate_address(outbound.recipient)],
            channel=self.name,
        )
        return SendResult(provider_message_id=message_id, details={"smtp_reply": reply[:200]})

    async def _with_original_parts(self, outbound: OutboundMessage) -> OutboundMessage:
        """The outbound piece with the message's own HTML parts.

        The core planner hands HTML to ``markup="html"`` channels as the source inside a
        TextPart, which would make us send HTML source as plain text. Email never splits
        (``text_max`` is None), so the stored message's parts are exactly this piece's content:
        use them, and so keep the text/HTML alternative the author wrote.
        """
        if outbound.part_index != 0 or not any(isinstance(p, TextPart) for p in outbound.parts):
            return outbound
        try:
            history = await self.context.thread_messages(outbound.account, outbound.thread_key, 50)
        except Exception:  # the lookup is an improvement only; never fail a send over it
            self.context.log.debug("could not load the message for its HTML parts", exc_info=True)
            return outbound
        original = next((m for m in reversed(history) if m.id == outbound.message_id), None)
        if original is None or not any(isinstance(p, HtmlPart) for p in original.parts):
            return outbound
        parts = tuple(p for p in original.parts if isinstance(p, TextPart | HtmlPart | MediaPart))
        return outbound.model_copy(update={"parts": parts})

    async def _attachment(self, part: MediaPart) -> bytes:
        limit = self.config.max_attachment_bytes
        url = part.url
        if url.startswith("data:"):
            header, sep, payload = url[5:].partition(",")
            if not sep:
                raise PermanentSendError("a data: URL without a comma", channel=self.name)
            try:
                data = (
                    base64.b64decode(payload, validate=False)
                    if header.endswith(";base64")
                    else unquote_to_bytes(payload)
                )
            except (binascii.Error, ValueError) as exc:
                raise PermanentSendError(f"unreadable data: URL: {exc}", channel=self.name) from exc
        elif url.startswith(("http://", "https://")):
            try:
                response = await self.context.http.get(url)
            except httpx.HTTPError as exc:
                raise RetryableSendError(f"cannot fetch attachment {url}: {exc}", channel=self.name) from exc
            if response.status_code >= 500 or response.status_code == 429:
                raise RetryableSendError(
                    f"attachment {url} answered {response.status_code}", channel=self.name
                )
            if response.status_code >= 400:
                raise PermanentSendError(
                    f"attachment {url} answered {response.status_code}", channel=self.name
                )
            data = response.content
        else:
            raise PermanentSendError(
                f"cannot fetch attachment {url!r}: use a data: or http(s) URL", channel=self.name
            )
        if len(data) > limit:
            raise PermanentSendError(
                f"attachment {part.filename or url} is {len(data)} bytes; the limit is {limit}",
                channel=self.name,
            )
        return data

    # ------------------------------------------------------------------ webhooks

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        route = request.path.strip("/").split("/", 1)[0].lower()
        if request.method != "POST":
            raise WebhookError("inbound-parse webhooks are POST requests", channel=self.name, status=405)
        if route == "mailgun" and self.config.mailgun_signing_key is not None:
            item = await self._mailgun(request)
        elif route == "sendgrid" and self.config.sendgrid_secret is not None:
            item = self._sendgrid(request)
        elif route == "postmark" and self.config.postmark_password is not None:
            item = self._postmark(request)
        else:
            raise WebhookError(f"no email webhook at {request.path!r}", channel=self.name, status=404)
        return WebhookResult(WebhookResponse.text("ok"), [item])

    def _parse(self, raw: bytes, status: int) -> InboundMessage | InboundDelivery:
        try:
            return parse_inbound(
                raw,
                account=self._account,
                token_secret=self._secret,
                reply_prefix=self.config.reply_prefix,
                received_at=self.context.now(),
            )
        except NotAnEmailError as exc:
            raise PayloadError(str(exc), channel=self.name, status=status) from exc

    async def _mailgun(self, request: WebhookRequest) -> InboundMessage | InboundDelivery:
        assert self.config.mailgun_signing_key is not None
        try:
            form = parse_form(request.header("content-type"), request.body)
        except PayloadError as exc:
            raise PayloadError(str(exc), channel=self.name, status=406) from exc
        timestamp = form["timestamp"].text if "timestamp" in form else ""
        token = form["token"].text if "token" in form else ""
        signature = form["signature"].text if "signature" in form else ""
        expected = mailgun_signature(self.config.mailgun_signing_key.get_secret_value(), timestamp, token)
        if not (timestamp and token and hmac.compare_digest(signature, expected)):
            raise SignatureError("missing or wrong Mailgun signature", channel=self.name)
        try:
            sent = float(timestamp)
        except ValueError as exc:
            raise SignatureError("Mailgun timestamp is not a number", channel=self.name) from exc
        now = self.context.now().timestamp()
        if abs(now - sent) > self.config.webhook_max_age:
            raise SignatureError("stale Mailgun timestamp (possible replay)", channel=self.name)
        raw = self._rebuild(lambda: mailgun_mime(form), 406)
        item = self._parse(raw, 406)
        identity = item.provider_message_id or ""
        await self._remember_token(token, identity, now)
        return item

    async def _remember_token(self, token: str, identity: str, now: float) -> None:
        """Refuse a token already used for a different message; a redelivery of the same
        message (Mailgun retrying after an error) is let through for the Hub to dedupe."""
        if self._token_lock is None:
            self._token_lock = anyio.Lock()
        async with self._token_lock:
            try:
                seen = json.loads(await self.context.get_state(_TOKENS_KEY) or "{}")
            except ValueError:
                seen = {}
            horizon = now - 2 * self.config.webhook_max_age
            seen = {k: v for k, v in seen.items() if isinstance(v, list) and len(v) == 2 and v[0] >= horizon}
            previous = seen.get(token)
            if previous is not None and previous[1] != identity:
                raise SignatureError("Mailgun token reused for another message (replay)", channel=self.name)
            seen[token] = [now, identity]
            await self.context.set_state(_TOKENS_KEY, json.dumps(seen))

    def _sendgrid(self, request: WebhookRequest) -> InboundMessage | InboundDelivery:
        assert self.config.sendgrid_secret is not None
        secret = self.config.sendgrid_secret.get_secret_value()
        _route, _sep, given = request.path.strip("/").partition("/")
        credentials = basic_auth(request.header("authorization"))
        by_path = bool(given) and hmac.compare_digest(given, secret)
        by_auth = credentials is not None and hmac.compare_digest(credentials[1], secret)
        if not (by_path or by_auth):
            raise SignatureError("missing or wrong SendGrid secret", channel=self.name, status=401)
        raw = self._rebuild(
            lambda: sendgrid_mime(parse_form(request.header("content-type"), request.body)), 400
        )
        return self._parse(raw, 400)

    def _postmark(self, request: WebhookRequest) -> InboundMessage | InboundDelivery:
        assert self.config.postmark_password is not None
        credentials = basic_auth(request.header("authorization"))
        if (
            credentials is None
            or not hmac.compare_digest(credentials[0], self.config.postmark_username or "")
            or not hmac.compare_digest(credentials[1], self.config.postmark_password.get_secret_value())
        ):
            raise SignatureError("missing or wrong Postmark basic auth", channel=self.name, status=401)
        try:
            payload = json.loads(request.body)
        except ValueError as exc:
            # 403 tells Postmark not to retry a payload that will never parse.
            raise PayloadError(f"Postmark body is not JSON: {exc}", channel=self.name, status=403) from exc
        return self._parse(self._rebuild(lambda: postmark_mime(payload), 403), 403)

    def _rebuild(self, build: Callable[[], bytes], status: int) -> bytes:
        try:
            return build()
        except (PayloadError, ValueError, TypeError, LookupError, UnicodeError) as exc:
            raise PayloadError(
                f"unreadable inbound-parse payload: {exc}", channel=self.name, status=status
            ) from exc

    # ------------------------------------------------------------------ background

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if self.config.imap is None:
            task_status.started()
            return
        poller = ImapPoller(self.config.imap, self.context, self._parse_for_imap, account=self._account)
        self.imap_poller = poller
        await poller.run(task_status=task_status)

    def _parse_for_imap(self, raw: bytes) -> InboundMessage | InboundDelivery:
        return parse_inbound(
            raw,
            account=self._account,
            token_secret=self._secret,
            reply_prefix=self.config.reply_prefix,
            received_at=self.context.now(),
        )
