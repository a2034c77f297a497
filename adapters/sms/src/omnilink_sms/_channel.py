"""The ``sms`` channel: Twilio and Vonage behind one adapter.

Threads are (customer number, business sender): ``thread_key`` is the customer's E.164 number
and ``account`` the business number or Twilio messaging service SID.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import httpx

from omnilink import (
    AddressError,
    Capabilities,
    Channel,
    ChannelContext,
    DeliveryStatus,
    HealthState,
    InboundDelivery,
    InboundMessage,
    InboundOptChange,
    MediaCapabilities,
    MediaPart,
    OutboundMessage,
    OutcomeUnknownError,
    Part,
    PayloadError,
    PermanentSendError,
    PolicyRefusal,
    RateLimitedError,
    RetryableSendError,
    SendContext,
    SendError,
    SendResult,
    SignatureError,
    TextPart,
    UnknownPart,
    WebhookError,
    WebhookRequest,
    WebhookResponse,
    WebhookResult,
    text_of,
)
from omnilink import Inbound as InboundItem
from omnilink import InboundHealth as InboundHealthItem

from ._config import SmsConfig, SmsSender
from ._phone import to_e164
from ._segments import segments
from ._signature import verify_body_hash, verify_twilio_signature
from ._wire import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    TWILIO_STATUS,
    VONAGE_RECEIPT_STATUS,
    keyword_of,
    retry_after_seconds,
    twilio_error,
    twiml,
    vonage_error,
)

__all__ = ["MMS_MAX_BYTES", "SMS_CAPABILITIES", "SmsChannel", "sms_capabilities", "utf16_length"]

MMS_MAX_BYTES = 5_000_000
"""Twilio refuses an MMS whose body and media together exceed 5 MB."""

TEXT_MAX = 1600
"""Twilio's body limit in characters (error 21617 above it)."""


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def sms_capabilities(media_max_bytes_by_type: dict[str, int] | None = None) -> Capabilities:
    """What the SMS channel carries; media limits per kind come from the config."""
    by_type = dict(
        media_max_bytes_by_type
        or SmsConfig.model_fields["media_max_bytes_by_type"].get_default(call_default_factory=True)
    )
    return Capabilities(
        text_max=TEXT_MAX,
        # Counted in UTF-16 units: never more than Twilio's count whichever way it counts
        # characters (code points or units), so a planned piece is never refused with 21617.
        length_unit="utf16",
        measure=utf16_length,
        media=MediaCapabilities(
            max_count=10,
            types=frozenset({"image", "audio", "video", "file"}),
            max_bytes=MMS_MAX_BYTES,
            max_bytes_by_type=by_type,
            with_text=True,
        ),
        delivery_receipts=True,
        can_start_conversation=True,
        thread_by_key=True,
    )


SMS_CAPABILITIES = sms_capabilities()


def _now_utc(context: ChannelContext) -> datetime:
    now = context.now()
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


class SmsChannel(Channel):
    """SMS and MMS through Twilio or Vonage, chosen per business sender."""

    thread_history = 0  # sends never refer to earlier messages

    config: SmsConfig

    def __init__(self, config: SmsConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.config = config
        self.capabilities = sms_capabilities(config.media_max_bytes_by_type)
        # SmsConfig already holds every number in E.164.
        self._senders: dict[str, SmsSender] = {sender.account: sender for sender in config.senders}

    # ------------------------------------------------------------------ addresses

    @property
    def default_account(self) -> str | None:
        if self.config.default_sender is not None:
            return self.sender_for(self.config.default_sender).account
        if len(self._senders) == 1:
            return next(iter(self._senders))
        return None

    def normalize_address(self, address: str) -> str:
        return to_e164(address, self.config.default_region, channel=self.name)

    def sender_for(self, account: str) -> SmsSender:
        """The configured sender for ``account`` (a number in any format, or an MG SID)."""
        found = self._senders.get(account)
        if found is None:
            try:
                found = self._senders.get(self.normalize_address(account))
            except AddressError:
                found = None
        if found is None:
            known = ", ".join(self._senders)
            raise PermanentSendError(
                f"{account!r} is not a configured SMS sender (configured: {known})", channel=self.name
            )
        return found

    def _account_for(self, business: str, service_sid: str | None = None) -> str:
        """The account of an inbound thread: the messaging service when configured, else the number."""
        if service_sid and service_sid in self._senders:
            return service_sid
        return self._phone_or_raw(business)

    def _phone_or_raw(self, value: str) -> str:
        if not value:
            return value
        try:
            return self.normalize_address(value)
        except AddressError:
            # Short codes and alphanumeric sender ids are not E.164; keep them as given.
            return value.strip()

    # ------------------------------------------------------------------ policy

    async def check_send(self, context: SendContext) -> dict[str, str]:
        try:
            sender = self.sender_for(context.thread.account)
        except PermanentSendError as exc:
            raise PolicyRefusal(str(exc), channel=self.name, rule="unknown_sender") from exc
        return {"provider": sender.provider}

    # ------------------------------------------------------------------ sending

    async def send(self, outbound: OutboundMessage) -> SendResult:
        sender = self.sender_for(outbound.account)
        try:
            recipient = self.normalize_address(outbound.recipient)
        except AddressError as exc:
            raise PermanentSendError(str(exc), channel=self.name) from exc
        text, media = _text_and_media(outbound.parts)
        if sender.provider == "vonage":
            return await self._send_vonage(sender, recipient, text, media, outbound)
        return await self._send_twilio(sender, recipient, text, media, outbound)

    def _callback_url(self, path: str) -> str | None:
        if not self.config.status_callbacks:
            return None
        if self.config.public_url:
            return self.config.public_url.rstrip("/") + path
        return self.context.webhook_url(path)

    async def _post(self, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.context.http.post(url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RetryableSendError(f"could not reach {url}: {exc!r}", channel=self.name) from exc
        except httpx.TransportError as exc:
            raise OutcomeUnknownError(
                f"the request to {url} failed after it was sent ({exc!r}); the provider may have sent it",
                channel=self.name,
            ) from exc

    async def _send_twilio(
        self,
        sender: SmsSender,
        recipient: str,
        text: str,
        media: list[MediaPart],
        outbound: OutboundMessage,
    ) -> SendResult:
        twilio = self.config.twilio
        assert twilio is not None  # guaranteed by SmsConfig validation
        seg = segments(text, smart_encoding=self.config.smart_encoding)
        known = [m.size for m in media if m.size is not None]
        if sum(known) + len(seg.text.encode("utf-8")) > MMS_MAX_BYTES:
            raise PermanentSendError(
                f"the MMS to {recipient} would be {sum(known)} bytes of media; Twilio accepts 5 MB in all",
                channel=self.name,
            )
        data: dict[str, str | list[str]] = {"To": recipient}
        if sender.messaging_service_sid:
            data["MessagingServiceSid"] = sender.messaging_service_sid
        else:
            data["From"] = sender.number or ""
        if seg.text:
            data["Body"] = seg.text
        if media:
            data["MediaUrl"] = [m.url for m in media]
        callback = self._callback_url("/twilio/status")
        if callback:
            data["StatusCallback"] = callback
        if twilio.api_key_sid and twilio.api_key_secret:
            auth = (twilio.api_key_sid, twilio.api_key_secret.get_secret_value())
        else:
            auth = (twilio.account_sid, twilio.auth_token.get_secret_value())
        url = f"{twilio.base_url.rstrip('/')}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
        resp = await self._post(url, data=data, auth=auth)
        request_id = resp.headers.get("twilio-request-id")
        if resp.status_code >= 400:
            error = twilio_error(
                resp.status_code,
                resp.content,
                channel=self.name,
                recipient=recipient,
                retry_after=retry_after_seconds(resp.headers.get("retry-after"), _now_utc(self.context)),
                request_id=request_id,
                sender=sender.account,
            )
            if error.provider_code == "21610":
                await self._record_opt_out(sender.account, recipient)
            raise error
        try:
            body = resp.json()
            sid = str(body["sid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise OutcomeUnknownError(
                f"Twilio answered {resp.status_code} without a message sid",
                channel=self.name,
                request_id=request_id,
            ) from exc
        details = {
            "provider": "twilio",
            "segments": str(seg.count),
            "encoding": seg.encoding,
            "provider_status": str(body.get("status", "")),
        }
        if body.get("num_segments") is not None:
            details["provider_segments"] = str(body["num_segments"])
        if media:
            details["media"] = str(len(media))
        if seg.replacements:
            details["smart_encoding"] = "".join(sorted(seg.replacements))
        return SendResult(provider_message_id=sid, status=DeliveryStatus.SENT, details=details)

    async def _send_vonage(
        self,
        sender: SmsSender,
        recipient: str,
        text: str,
        media: list[MediaPart],
        outbound: OutboundMessage,
    ) -> SendResult:
        vonage = self.config.vonage
        assert vonage is not None  # guaranteed by SmsConfig validation
        if media:
            # The SMS API carries no MMS: media go as links, reported in the details.
            links = "\n".join(m.url for m in media)
            text = f"{text}\n{links}" if text else links
        seg = segments(text, smart_encoding=self.config.smart_encoding)
        data: dict[str, str] = {
            "api_key": vonage.api_key,
            "api_secret": vonage.api_secret.get_secret_value(),
            "from": (sender.number or "").lstrip("+"),
            "to": recipient.lstrip("+"),
            "text": seg.text,
            "type": "unicode" if seg.encoding == "UCS-2" else "text",
            "client-ref": outbound.idempotency_key,
        }
        callback = self._callback_url("/vonage/status")
        if callback:
            data["callback"] = callback
        resp = await self._post(f"{vonage.base_url.rstrip('/')}/sms/json", data=data)
        if resp.status_code == 401:
            raise vonage_error("4", "HTTP 401", channel=self.name, recipient=recipient, request_id=None)
        retry_after = retry_after_seconds(resp.headers.get("retry-after"), _now_utc(self.context))
        if resp.status_code == 429:
            raise RateLimitedError(
                "Vonage HTTP 429", channel=self.name, provider_code="1", retry_after=retry_after
            )
        if resp.status_code >= 500:
            raise RetryableSendError(f"Vonage {resp.status_code}", channel=self.name, retry_after=retry_after)
        if resp.status_code >= 400:
            raise PermanentSendError(
                f"Vonage refused the request with HTTP {resp.status_code}: {resp.text[:200]}",
                channel=self.name,
            )
        try:
            body = resp.json()
            entries = list(body["messages"])
        except (ValueError, KeyError, TypeError) as exc:
            raise OutcomeUnknownError(
                f"Vonage answered {resp.status_code} with an unexpected body", channel=self.name
            ) from exc
        ids: list[str] = []
        failure: SendError | None = None
        for entry in entries:
            status = str(entry.get("status", ""))
            if status == "0":
                ids.append(str(entry.get("message-id", "")))
            elif failure is None:
                failure = vonage_error(
                    status,
                    str(entry.get("error-text", "")),
                    channel=self.name,
                    recipient=recipient,
                    request_id=entry.get("message-id"),
                )
        if failure is not None:
            if failure.provider_code == "9":
                await self._submit_quietly(
                    [
                        InboundHealthItem(
                            account=sender.account, state=HealthState.USAGE_CAPPED, detail=str(failure)
                        )
                    ]
                )
            if ids:
                # Some parts went out: a retry would send them twice.
                raise PermanentSendError(
                    f"Vonage sent {len(ids)} of {len(entries)} parts to {recipient}; then: {failure}",
                    channel=self.name,
                    provider_code=failure.provider_code,
                ) from failure
            raise failure
        if not ids:
            raise OutcomeUnknownError("Vonage answered without any message", channel=self.name)
        details = {
            "provider": "vonage",
            "segments": str(seg.count),
            "encoding": seg.encoding,
            "provider_segments": str(len(entries)),
            "provider_ids": ",".join(ids),
        }
        if media:
            details["media_as_links"] = str(len(media))
        if seg.replacements:
            details["smart_encoding"] = "".join(sorted(seg.replacements))
        return SendResult(provider_message_id=ids[0], status=DeliveryStatus.SENT, details=details)

    async def _submit_quietly(self, items: Sequence[InboundItem]) -> None:
        """Record items from inside a send; a failure here must not hide the send's own error."""
        try:
            with anyio.fail_after(10):
                await self.context.submit(items)
        except Exception:
            self.context.log.exception("could not record %d item(s) from a send", len(items))

    async def _record_opt_out(self, account: str, address: str) -> None:
        await self._submit_quietly(
            [InboundOptChange(account=account, address=address, opted_out=True, keyword="21610")]
        )

    # ------------------------------------------------------------------ webhooks

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        path = request.path.rstrip("/")
        if path in ("", "/twilio", "/twilio/inbound", "/twilio/status"):
            return await self._twilio_webhook(request, path)
        if path in ("/vonage", "/vonage/inbound", "/vonage/status"):
            return await self._vonage_webhook(request, path)
        raise WebhookError(f"no SMS webhook at {request.path!r}", channel=self.name, status=404)

    def signed_url(self, request: WebhookRequest) -> str:
        """The URL Twilio requested, as it signed it (public URL, forwarded headers, or as received)."""
        try:
            parts = urlsplit(request.url)
        except ValueError as exc:
            raise PayloadError(f"unreadable request URL {request.url!r}", channel=self.name) from exc
        query = f"?{parts.query}" if parts.query else ""
        if self.config.public_url:
            return self.config.public_url.rstrip("/") + request.path + query
        hub_url = self.context.webhook_url(request.path)
        if hub_url is not None:
            return hub_url + query
        if self.config.trust_forwarded_headers:
            proto = (request.header("x-forwarded-proto") or parts.scheme).split(",")[0].strip()
            host = request.header("x-forwarded-host") or request.header("host") or parts.netloc
            return f"{proto}://{host.split(',')[0].strip()}{parts.path}{query}"
        return request.url

    def _refuse(self, message: str) -> None:
        if self.config.signature_mode == "log_only":
            self.context.log.warning("accepted despite signature_mode=log_only: %s", message)
            return
        raise SignatureError(message, channel=self.name)

    def _twilio_params(self, request: WebhookRequest) -> tuple[list[tuple[str, str]], bool]:
        """(parameters, is_json). Form bodies give the signed parameters; JSON bodies none."""
        ctype = (request.header("content-type") or "").lower()
        if request.method == "GET":
            return [], False
        if "json" in ctype:
            return [], True
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError("the Twilio webhook body is not UTF-8", channel=self.name) from exc
        return parse_qsl(text, keep_blank_values=True), False

    def _verify_twilio(self, request: WebhookRequest, pairs: list[tuple[str, str]], is_json: bool) -> None:
        twilio = self.config.twilio
        if twilio is None:
            raise WebhookError(
                "Twilio webhooks arrive but no twilio settings are configured", channel=self.name, status=404
            )
        signature = request.header("x-twilio-signature")
        if not signature:
            self._refuse("the request has no X-Twilio-Signature header")
            return
        url = self.signed_url(request)
        token = twilio.auth_token.get_secret_value()
        if is_json:
            ok = verify_body_hash(url, request.body) and verify_twilio_signature(token, url, None, signature)
        else:
            ok = verify_twilio_signature(token, url, pairs, signature)
        if not ok:
            self._refuse(f"X-Twilio-Signature does not match a request to {url}")

    async def _twilio_webhook(self, request: WebhookRequest, path: str) -> WebhookResult:
        pairs, is_json = self._twilio_params(request)
        self._verify_twilio(request, pairs, is_json)
        if request.method == "GET":
            params = request.query  # signed as part of the URL
        elif is_json:
            try:
                loaded = json.loads(request.body)
            except ValueError as exc:
                raise PayloadError("the Twilio webhook body is not JSON", channel=self.name) from exc
            if not isinstance(loaded, dict):
                raise PayloadError("the Twilio webhook body is not a JSON object", channel=self.name)
            params = {str(k): str(v) for k, v in loaded.items()}
        else:
            params = dict(pairs)  # repeated names: the last value wins (Twilio repeats none here)
        is_status = path == "/twilio/status" or (
            path != "/twilio/inbound" and "MessageStatus" in params and "Body" not in params
        )
        if is_status:
            items = self._twilio_status(params)
            return WebhookResult(WebhookResponse(200, twiml(), "text/xml"), items)
        return self._twilio_inbound(params)

    def _twilio_inbound(self, params: dict[str, str]) -> WebhookResult:
        sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
        if not sid or "From" not in params or "To" not in params:
            raise PayloadError("a Twilio message webhook needs MessageSid, From and To", channel=self.name)
        account = self._account_for(params["To"], params.get("MessagingServiceSid"))
        customer = self._phone_or_raw(params["From"])
        body = params.get("Body", "")
        parts: list[Part] = [TextPart(text=body)] if body else []
        try:
            num_media = int(params.get("NumMedia", "0") or 0)
        except ValueError as exc:
            raise PayloadError(
                f"NumMedia is not a number: {params['NumMedia']!r}", channel=self.name
            ) from exc
        for i in range(num_media):
            url = params.get(f"MediaUrl{i}")
            if url:
                ctype = params.get(f"MediaContentType{i}") or "application/octet-stream"
                parts.append(MediaPart(url=url, content_type=ctype))
        if not parts:
            parts = [TextPart(text="")]
        items: list[InboundItem] = [
            InboundMessage(
                account=account,
                thread_key=customer,
                sender=customer,
                provider_message_id=sid,
                parts=tuple(parts),
                sent_at=_now_utc(self.context),
                raw=dict(params),
            )
        ]
        reply: str | None = None
        keyword = keyword_of(body)
        opt_type = params.get("OptOutType", "").upper()  # set by Twilio's Advanced Opt-Out
        if keyword in OPT_OUT_KEYWORDS or opt_type == "STOP":
            items.append(InboundOptChange(account=account, address=customer, opted_out=True, keyword=keyword))
        elif keyword in OPT_IN_KEYWORDS or opt_type == "START":
            items.append(
                InboundOptChange(account=account, address=customer, opted_out=False, keyword=keyword)
            )
        elif keyword in HELP_KEYWORDS or opt_type == "HELP":
            reply = self._help_text(account)
        return WebhookResult(WebhookResponse(200, twiml(reply), "text/xml"), items)

    def _help_text(self, account: str) -> str | None:
        sender = self._senders.get(account)
        if sender is not None and sender.help_text:
            return sender.help_text
        return self.config.help_text

    def _twilio_status(self, params: dict[str, str]) -> list[InboundItem]:
        sid = params.get("MessageSid") or params.get("SmsSid")
        raw_status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
        if not sid or not raw_status:
            raise PayloadError(
                "a Twilio status callback needs MessageSid and MessageStatus", channel=self.name
            )
        status = TWILIO_STATUS.get(raw_status)
        if status is None:
            self.context.log.info("ignored Twilio status %r for %s", raw_status, sid)
            return []
        account = self._account_for(params.get("From", ""), params.get("MessagingServiceSid"))
        customer = self._phone_or_raw(params.get("To", "")) or None
        code = params.get("ErrorCode") or None
        error = None
        if code and status in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED):
            error = f"Twilio error {code}" + (
                f": {params['ErrorMessage']}" if params.get("ErrorMessage") else ""
            )
        return [
            InboundDelivery(
                account=account,
                status=status,
                provider_message_id=sid,
                thread_key=customer,
                error=error,
                at=_now_utc(self.context),
                raw=dict(params),
            )
        ]

    # ------------------------------------------------------------------ Vonage webhooks

    def _vonage_params(self, request: WebhookRequest) -> dict[str, str]:
        params = dict(request.query)
        ctype = (request.header("content-type") or "").lower()
        if request.method != "GET" and request.body:
            try:
                if "json" in ctype:
                    loaded = json.loads(request.body)
                    if not isinstance(loaded, dict):
                        raise PayloadError("the Vonage webhook body is not a JSON object", channel=self.name)
                    params.update({str(k): str(v) for k, v in loaded.items() if v is not None})
                else:
                    params.update(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
            except (UnicodeDecodeError, ValueError) as exc:
                raise PayloadError(f"unreadable Vonage webhook body: {exc}", channel=self.name) from exc
        return params

    async def _vonage_webhook(self, request: WebhookRequest, path: str) -> WebhookResult:
        vonage = self.config.vonage
        if vonage is None:
            raise WebhookError(
                "Vonage webhooks arrive but no vonage settings are configured", channel=self.name, status=404
            )
        params = self._vonage_params(request)
        token = params.pop("token", None)
        if vonage.webhook_token is not None:
            import hmac

            expected = vonage.webhook_token.get_secret_value().encode()
            if token is None or not hmac.compare_digest(expected, token.encode()):
                self._refuse("the Vonage webhook does not carry the configured token")
        ok = WebhookResponse(204)
        if path == "/vonage/status" or (path == "/vonage" and "status" in params and "text" not in params):
            return WebhookResult(ok, self._vonage_receipt(params))
        return WebhookResult(ok, await self._vonage_inbound(params))

    def _vonage_receipt(self, params: dict[str, str]) -> list[InboundItem]:
        mid = params.get("messageId")
        raw_status = params.get("status", "").lower()
        if not mid or not raw_status:
            raise PayloadError("a Vonage receipt needs messageId and status", channel=self.name)
        status = VONAGE_RECEIPT_STATUS.get(raw_status)
        if status is None:
            return []
        err = params.get("err-code")
        error = (
            f"Vonage err-code {err}"
            if err and err != "0" and status not in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
            else None
        )
        return [
            InboundDelivery(
                account=self._phone_or_raw(_plus(params.get("to", ""))),
                status=status,
                provider_message_id=mid,
                thread_key=self._phone_or_raw(_plus(params.get("msisdn", ""))) or None,
                error=error,
                at=_now_utc(self.context),
                raw=dict(params),
            )
        ]

    async def _vonage_inbound(self, params: dict[str, str]) -> list[InboundItem]:
        mid = params.get("messageId")
        if not mid or "msisdn" not in params or "to" not in params:
            raise PayloadError("a Vonage inbound message needs messageId, msisdn and to", channel=self.name)
        account = self._phone_or_raw(_plus(params["to"]))
        customer = self._phone_or_raw(_plus(params["msisdn"]))
        sent_at = _vonage_time(params.get("message-timestamp")) or _now_utc(self.context)
        text = params.get("text", "")
        provider_id = mid
        raw: dict[str, Any] = dict(params)
        if params.get("concat", "").lower() == "true":
            assembled = await self._assemble(account, customer, params)
            if assembled is None:
                return []
            text, provider_id, raw = assembled
        items: list[InboundItem] = [
            InboundMessage(
                account=account,
                thread_key=customer,
                sender=customer,
                provider_message_id=provider_id,
                parts=(_vonage_part(params, text),),
                sent_at=sent_at,
                raw=raw,
            )
        ]
        keyword = keyword_of(text)
        if keyword in OPT_OUT_KEYWORDS:
            items.append(InboundOptChange(account=account, address=customer, opted_out=True, keyword=keyword))
        elif keyword in OPT_IN_KEYWORDS:
            items.append(
                InboundOptChange(account=account, address=customer, opted_out=False, keyword=keyword)
            )
        return items

    async def _assemble(
        self, account: str, customer: str, params: dict[str, str]
    ) -> tuple[str, str, dict[str, Any]] | None:
        """Keep a concatenated part durably until every part arrived; then the whole text.

        Each part is stored under its own key, so parts arriving at the same time in several
        workers never overwrite each other; whoever sees the last part assembles the message
        (two workers may both do so: the Hub's dedupe keeps one). The provider id of the
        assembled message is part 1's, so a redelivered part yields the same message again.
        A ``done`` record names the parts already assembled, so a reused 8-bit reference
        starts a new message instead of mixing old and new parts.
        """
        try:
            ref = params["concat-ref"]
            total = int(params["concat-total"])
            number = int(params["concat-part"])
        except (KeyError, ValueError) as exc:
            raise PayloadError(
                f"a concatenated Vonage part lacks concat fields: {exc}", channel=self.name
            ) from exc
        if not 1 <= number <= total <= 255:
            raise PayloadError(f"concat-part {number} of {total} is out of range", channel=self.name)
        prefix = f"vonage.concat:{account}:{customer}:{ref}:{total}"
        mid = params["messageId"]
        stored_done = await self.context.get_state(f"{prefix}:done")
        done: dict[str, Any] = json.loads(stored_done) if stored_done else {}
        if mid in done.get("ids", ()):
            # A redelivered part of a message already assembled: the same message again.
            return (
                str(done["text"]),
                str(done["ids"][0]),
                {**params, "text": done["text"], "concat-ids": done["ids"]},
            )
        await self.context.set_state(
            f"{prefix}:{number}",
            json.dumps({"id": mid, "text": params.get("text", "")}, separators=(",", ":")),
        )
        ordered: list[dict[str, str]] = []
        for i in range(1, total + 1):
            stored = await self.context.get_state(f"{prefix}:{i}")
            part = json.loads(stored) if stored else None
            if part is None or part["id"] in done.get("ids", ()):
                return None  # still waiting (a stale part of an earlier message does not count)
            ordered.append(part)
        text = "".join(p["text"] for p in ordered)
        ids = [p["id"] for p in ordered]
        await self.context.set_state(
            f"{prefix}:done", json.dumps({"ids": ids, "text": text}, separators=(",", ":"))
        )
        return text, ids[0], {**params, "text": text, "concat-ids": ids}


def _vonage_part(params: dict[str, str], text: str) -> Part:
    if params.get("type") == "binary":
        # A binary SMS (ringtones, WAP push …): kept for audit, not shown as text.
        data = {k: params[k] for k in ("data", "udh", "protocol-id") if k in params}
        return UnknownPart(provider_type="vonage.binary", data=data)
    return TextPart(text=text)


def _plus(digits: str) -> str:
    digits = digits.strip()
    return f"+{digits}" if digits.isdigit() else digits


def _vonage_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _text_and_media(parts: Sequence[Part]) -> tuple[str, list[MediaPart]]:
    texts: list[str] = []
    media: list[MediaPart] = []
    for part in parts:
        if isinstance(part, MediaPart):
            media.append(part)
            if part.caption:
                texts.append(part.caption)
        else:
            texts.append(text_of([part]))
    return "\n\n".join(t for t in texts if t), media
