"""A fake of Twilio's Messages API and of the webhooks Twilio sends.

It enforces what Twilio enforces (HTTP Basic auth, E.164 ``To``, owned ``From`` numbers and
messaging services, the 1600-character body, at most 10 media, opt-outs after a customer's
STOP) with Twilio's error bodies, answers with Twilio's resource JSON, and builds correctly
signed inbound and status-callback requests for the adapter.
"""

from __future__ import annotations

import base64
import itertools
import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import phonenumbers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from omnilink import WebhookRequest
from omnilink.testing import FakeProvider

from .._segments import segments
from .._signature import twilio_signature
from .._wire import OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, keyword_of

__all__ = ["FakeTwilio"]

API_VERSION = "2010-04-01"
BODY_MAX = 1600
MEDIA_MAX = 10

_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    ),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The 'From' phone number provided ({from_}) is not a valid message-capable Twilio phone number "
        "for this destination/account.",
    ),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number {to} is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21623: (400, "The number of media files exceeds the allowed limit of 10."),
    21701: (400, "The Messaging Service Sid {service} is invalid."),
}
"""Twilio error codes the fake answers with. 21602/21603/21604/21623/21701 are (confirm)."""


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class FakeTwilio(FakeProvider):
    """Twilio Programmable Messaging, in-process or on 127.0.0.1.

    ``numbers`` are the account's message-capable numbers; ``messaging_services`` maps a
    service SID to the numbers in its sender pool. ``webhook_base`` is the public URL of the
    channel's webhook mount (what the helpdesk configured at Twilio), e.g.
    ``https://helpdesk.example/webhooks/sms``.
    """

    hosts = ("api.twilio.com",)

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        numbers: Sequence[str] = ("+14155550100",),
        messaging_services: Mapping[str, Sequence[str]] | None = None,
        api_keys: Mapping[str, str] | None = None,
        webhook_base: str = "https://helpdesk.example/webhooks/sms",
        landlines: Iterable[str] = (),
        blocked_prefixes: Iterable[str] = (),
        advanced_opt_out: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.account_sid = account_sid or _sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.numbers = list(numbers)
        self.messaging_services = {k: list(v) for k, v in (messaging_services or {}).items()}
        self.api_keys = dict(api_keys or {})
        self.webhook_base = webhook_base.rstrip("/")
        self.landlines = set(landlines)
        self.blocked_prefixes = tuple(blocked_prefixes)
        self.advanced_opt_out = advanced_opt_out
        self.messages: dict[str, dict[str, Any]] = {}
        """Every accepted message resource by SID."""
        self.sent: list[dict[str, Any]] = []
        """Accepted message resources in send order (with ``media_urls`` and ``status_callback``)."""
        self.opted_out: set[tuple[str, str]] = set()
        """(sender number or messaging service SID, customer number) pairs blocked until START."""
        self._rng = random.Random(0)
        self._counter = itertools.count(1)

    # ------------------------------------------------------------------ the API

    def routes(self) -> Sequence[BaseRoute]:
        base = f"/{API_VERSION}/Accounts/{{account_sid}}"
        return [
            Route(f"{base}/Messages.json", self._create, methods=["POST"]),
            Route(f"{base}/Messages/{{sid}}.json", self._fetch, methods=["GET"]),
        ]

    def _error(self, code: int, headers: Mapping[str, str] | None = None, **fmt: str) -> Response:
        status, template = _ERRORS[code]
        body = {
            "code": code,
            "message": template.format(**{"to": "", "from_": "", "service": "", **fmt}),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return JSONResponse(body, status_code=status, headers=dict(headers or {}))

    def _authorised(self, request: Request, account_sid: str) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if user == self.account_sid:
            ok = secrets.compare_digest(password, self.auth_token)
        elif user in self.api_keys:
            ok = secrets.compare_digest(password, self.api_keys[user])
        else:
            ok = False
        return ok and account_sid == self.account_sid

    def _resource(self, record: dict[str, Any]) -> dict[str, Any]:
        keys = (
            "account_sid",
            "api_version",
            "body",
            "date_created",
            "date_sent",
            "date_updated",
            "direction",
            "error_code",
            "error_message",
            "from",
            "messaging_service_sid",
            "num_media",
            "num_segments",
            "price",
            "price_unit",
            "sid",
            "status",
            "subresource_uris",
            "to",
            "uri",
        )
        return {k: record[k] for k in keys}

    async def _fetch(self, request: Request) -> Response:
        if not self._authorised(request, request.path_params["account_sid"]):
            return self._error(20003)
        record = self.messages.get(request.path_params["sid"])
        if record is None:
            return self._error(20404)
        return JSONResponse(self._resource(record))

    def _sender_scope(self, from_: str | None, service: str | None) -> str:
        if service:
            return service
        assert from_ is not None
        for sid, pool in self.messaging_services.items():
            if from_ in pool:
                return sid
        return from_

    def _pool_number(self, service: str | None) -> str | None:
        pool = self.messaging_services.get(service or "") or []
        return pool[0] if pool else None

    async def _create(self, request: Request) -> Response:
        if not self._authorised(request, request.path_params["account_sid"]):
            return self._error(20003)
        fault = self.take_fault("messages")
        if fault is not None:
            body = (
                fault.body
                if fault.body is not None
                else {
                    "code": 20429 if fault.status == 429 else 20500,
                    "message": "injected fault",
                    "more_info": "",
                    "status": fault.status,
                }
            )
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        form = dict(pairs)
        to = form.get("To", "")
        from_ = form.get("From") or None
        service = form.get("MessagingServiceSid") or None
        body = form.get("Body", "")
        media = [v for k, v in pairs if k == "MediaUrl"]
        callback = form.get("StatusCallback") or None
        if not to:
            return self._error(21604)
        if not _valid_e164(to):
            return self._error(21211, to=to)
        if service is not None:
            if service not in self.messaging_services:
                return self._error(21701, service=service)
        elif from_ is None:
            return self._error(21603)
        elif from_ not in self.numbers and not any(from_ in p for p in self.messaging_services.values()):
            return self._error(21606, from_=from_)
        if not body and not media:
            return self._error(21602)
        if len(body) > BODY_MAX:
            return self._error(21617)
        if len(media) > MEDIA_MAX:
            return self._error(21623)
        if any(to.startswith(p) for p in self.blocked_prefixes):
            return self._error(21408, to=to)
        if to in self.landlines:
            return self._error(21614, to=to)
        if (self._sender_scope(from_, service), to) in self.opted_out:
            return self._error(21610)
        sid = _sid("SM")
        now = format_datetime(self.now(), usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        record: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": service,
            "num_media": str(len(media)),
            "num_segments": str(segments(body).count if body else 1),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
            # kept for tests, not part of the resource
            "media_urls": media,
            "status_callback": callback,
            "sender": from_
            or (
                self.messaging_services[service][0] if service and self.messaging_services[service] else None
            ),
        }
        self.messages[sid] = record
        self.sent.append(record)
        return JSONResponse(self._resource(record), status_code=201)

    # ------------------------------------------------------------------ webhooks Twilio sends

    def signed_request(
        self, url: str, params: Sequence[tuple[str, str]], *, token: str | None = None
    ) -> WebhookRequest:
        """A form POST to ``url`` signed the way Twilio signs it."""
        body = urlencode(list(params)).encode()
        signature = twilio_signature(token or self.auth_token, url, list(params))
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
            "i-twilio-idempotency-token": secrets.token_hex(8),
            "user-agent": "TwilioProxy/1.1",
        }
        return WebhookRequest.build("POST", url, headers, body, path=self._sub_path(url))

    def _sub_path(self, url: str) -> str:
        path = urlsplit(url).path
        mount = urlsplit(self.webhook_base).path
        return path[len(mount) :] if mount and path.startswith(mount) else path

    def customer_message(
        self,
        from_: str,
        to: str | None = None,
        body: str = "",
        *,
        media: Sequence[tuple[str, str]] = (),
        message_sid: str | None = None,
        url: str | None = None,
    ) -> WebhookRequest:
        """A customer's text (or MMS with ``media`` = [(url, content type)]) to business number
        ``to``, as Twilio posts it. STOP-family bodies opt the customer out, START-family in."""
        to = to or self.numbers[0]
        sid = message_sid or ("MM" if media else "SM") + secrets.token_hex(16)
        service = next((s for s, pool in self.messaging_services.items() if to in pool), None)
        params: list[tuple[str, str]] = [
            ("ToCountry", "US"),
            ("ToState", "CA"),
            ("SmsMessageSid", sid),
            ("NumMedia", str(len(media))),
            ("ToCity", ""),
            ("FromZip", ""),
            ("SmsSid", sid),
            ("FromState", ""),
            ("SmsStatus", "received"),
            ("FromCity", ""),
            ("Body", body),
            ("FromCountry", "US"),
            ("To", to),
            ("ToZip", ""),
            ("NumSegments", str(segments(body).count)),
            ("MessageSid", sid),
            ("AccountSid", self.account_sid),
            ("From", from_),
            ("ApiVersion", API_VERSION),
        ]
        if service:
            params.append(("MessagingServiceSid", service))
        for i, (media_url, ctype) in enumerate(media):
            params += [(f"MediaUrl{i}", media_url), (f"MediaContentType{i}", ctype)]
        keyword = keyword_of(body)
        scope = service or to
        if keyword in OPT_OUT_KEYWORDS:
            self.opted_out.add((scope, from_))
            if self.advanced_opt_out:
                params.append(("OptOutType", "STOP"))
        elif keyword in OPT_IN_KEYWORDS:
            self.opted_out.discard((scope, from_))
            if self.advanced_opt_out:
                params.append(("OptOutType", "START"))
        elif keyword in {"HELP", "INFO"} and self.advanced_opt_out:
            params.append(("OptOutType", "HELP"))
        return self.signed_request(url or f"{self.webhook_base}/twilio/inbound", params)

    def status_request(self, sid: str, status: str, *, error_code: str | None = None) -> WebhookRequest:
        """The status callback Twilio posts when message ``sid`` reaches ``status``."""
        record = self.messages[sid]
        record["status"] = status
        if error_code:
            record["error_code"] = int(error_code)
        url = record["status_callback"] or f"{self.webhook_base}/twilio/status"
        params: list[tuple[str, str]] = [
            ("SmsSid", sid),
            ("SmsStatus", status),
            ("MessageStatus", status),
            ("To", record["to"]),
            ("MessageSid", sid),
            ("AccountSid", self.account_sid),
            ("From", record["sender"] or ""),
            ("ApiVersion", API_VERSION),
        ]
        if record["messaging_service_sid"]:
            params.append(("MessagingServiceSid", record["messaging_service_sid"]))
        if error_code:
            params.append(("ErrorCode", error_code))
        return self.signed_request(url, params)

    def status_requests(
        self,
        sid: str,
        statuses: Sequence[str] = ("sent", "delivered"),
        *,
        duplicate: bool = False,
        shuffle: bool = False,
        seed: int = 0,
    ) -> list[WebhookRequest]:
        """Status callbacks for ``sid``: in order, or duplicated and shuffled like real traffic."""
        requests = [self.status_request(sid, s) for s in statuses]
        if duplicate:
            requests = requests + requests[: max(1, len(requests) // 2)]
        if shuffle:
            random.Random(seed).shuffle(requests)
        return requests

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        return [r for r in self.sent if r["to"] == number]


def _valid_e164(number: str) -> bool:
    if not number.startswith("+"):
        return False
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
    )
