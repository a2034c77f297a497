"""A fake of Vonage's SMS API (``POST /sms/json``) and of the webhooks Vonage sends.

Like the real API it answers HTTP 200 even on errors, with one ``messages`` entry per part and
a non-zero ``status`` on failure; it splits long texts into parts and delivers long inbound
texts as concatenated parts (``concat``, ``concat-ref``, ``concat-total``, ``concat-part``).
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from omnilink import WebhookRequest
from omnilink.testing import FakeProvider

from .._segments import is_gsm7, segments

__all__ = ["FakeVonage"]

_ERROR_TEXT = {
    "1": "Throttled",
    "2": "Missing to param",
    "3": "Invalid to param",
    "4": "Bad Credentials",
    "6": "Invalid Message",
    "7": "Number barred.",
    "9": "Partner quota exceeded",
    "15": "Illegal Sender Address - rejected",
}


class FakeVonage(FakeProvider):
    """Vonage SMS, in-process or on 127.0.0.1.

    ``numbers`` are the account's virtual numbers (E.164); ``webhook_base`` is the public
    URL of the channel's webhook mount; ``webhook_token`` the ``?token=`` the helpdesk put in
    the webhook URLs configured at Vonage.
    """

    hosts = ("rest.nexmo.com",)

    def __init__(
        self,
        *,
        api_key: str = "vonage-key",
        api_secret: str | None = None,
        numbers: Sequence[str] = ("+14155550199",),
        webhook_base: str = "https://helpdesk.example/webhooks/sms",
        webhook_token: str | None = None,
        barred: Iterable[str] = (),
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.api_key = api_key
        self.api_secret = api_secret or secrets.token_hex(8)
        self.numbers = list(numbers)
        self.webhook_base = webhook_base.rstrip("/")
        self.webhook_token = webhook_token
        self.barred = set(barred)
        self.sent: list[dict[str, Any]] = []
        """One record per accepted request: to, from, text, type, client-ref, part ids, wrong_encoding."""
        self.quota_exhausted = False
        self._refs = itertools.count(1)

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/sms/json", self._send, methods=["POST", "GET"])]

    def _answer(self, to: str, status: str, text: str = "") -> Response:
        entry = {"to": to, "status": status, "error-text": text or _ERROR_TEXT.get(status, "Error")}
        return JSONResponse({"message-count": "1", "messages": [entry]})

    async def _send(self, request: Request) -> Response:
        params: dict[str, str] = dict(request.query_params)
        ctype = request.headers.get("content-type", "")
        if "json" in ctype:
            try:
                loaded = json.loads(await request.body())
            except ValueError:
                return self._answer("", "2", "Missing params")
            params.update({str(k): str(v) for k, v in loaded.items()})
        elif request.method == "POST":
            form = (await request.body()).decode("utf-8", "replace")
            params.update(parse_qsl(form, keep_blank_values=True))
        fault = self.take_fault("sms")
        if fault is not None:
            body = (
                fault.body
                if fault.body is not None
                else {
                    "message-count": "1",
                    "messages": [{"to": params.get("to", ""), "status": "1", "error-text": "Throttled"}],
                }
            )
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        to = params.get("to", "")
        if params.get("api_key") != self.api_key or not secrets.compare_digest(
            params.get("api_secret", ""), self.api_secret
        ):
            return self._answer(to, "4")
        if not to:
            return self._answer(to, "2")
        if not to.isdigit() or not 7 <= len(to) <= 15:
            return self._answer(to, "3", "Invalid to param")
        sender = params.get("from", "")
        if f"+{sender}" not in self.numbers:
            return self._answer(to, "15")
        text = params.get("text", "")
        if not text:
            return self._answer(to, "2", "Missing text param")
        if f"+{to}" in self.barred:
            return self._answer(to, "7")
        if self.quota_exhausted:
            return self._answer(to, "9")
        kind = params.get("type", "text")
        seg = segments(text)
        # Unicode text sent as type=text arrives garbled: record it so tests can catch it.
        wrong_encoding = kind != "unicode" and not is_gsm7(text)
        count = seg.count
        ids = [secrets.token_hex(8).upper() for _ in range(count)]
        record = {
            "to": to,
            "from": sender,
            "text": text,
            "type": kind,
            "client-ref": params.get("client-ref"),
            "callback": params.get("callback"),
            "ids": ids,
            "wrong_encoding": wrong_encoding,
        }
        self.sent.append(record)
        messages = [
            {
                "to": to,
                "message-id": mid,
                "status": "0",
                "remaining-balance": "10.00000000",
                "message-price": "0.00680000",
                "network": "310260",
                **({"client-ref": params["client-ref"]} if params.get("client-ref") else {}),
            }
            for mid in ids
        ]
        return JSONResponse({"message-count": str(count), "messages": messages})

    # ------------------------------------------------------------------ webhooks Vonage sends

    def _url(self, path: str) -> str:
        url = f"{self.webhook_base}{path}"
        return f"{url}?{urlencode({'token': self.webhook_token})}" if self.webhook_token else url

    def _request(self, path: str, params: Mapping[str, str], *, method: str = "POST-JSON") -> WebhookRequest:
        url = self._url(path)
        sub = urlsplit(url).path[len(urlsplit(self.webhook_base).path) :]
        if method == "GET":
            sep = "&" if "?" in url else "?"
            return WebhookRequest.build("GET", f"{url}{sep}{urlencode(dict(params))}", {}, b"", path=sub)
        if method == "POST":
            body = urlencode(dict(params)).encode()
            return WebhookRequest.build(
                "POST", url, {"content-type": "application/x-www-form-urlencoded"}, body, path=sub
            )
        body = json.dumps(dict(params)).encode()
        return WebhookRequest.build("POST", url, {"content-type": "application/json"}, body, path=sub)

    def customer_message(
        self,
        msisdn: str,
        to: str | None = None,
        text: str = "",
        *,
        message_id: str | None = None,
        concat: bool | None = None,
        method: str = "POST-JSON",
    ) -> list[WebhookRequest]:
        """A customer's text as Vonage delivers it: one request, or one per concatenated part
        when the text takes several segments (or ``concat=True``)."""
        to = to or self.numbers[0]
        seg = segments(text)
        parts = list(seg.parts) if (concat if concat is not None else seg.count > 1) else [text]
        ref = str(next(self._refs) % 256)
        stamp = self.now().strftime("%Y-%m-%d %H:%M:%S")
        requests = []
        for i, part in enumerate(parts, 1):
            params = {
                "msisdn": msisdn.lstrip("+"),
                "to": to.lstrip("+"),
                "messageId": message_id if (message_id and len(parts) == 1) else secrets.token_hex(8).upper(),
                "text": part,
                "type": "unicode" if seg.encoding == "UCS-2" else "text",
                "keyword": (text.split() or [""])[0].upper(),
                "api-key": self.api_key,
                "message-timestamp": stamp,
            }
            if len(parts) > 1:
                params.update(
                    {
                        "concat": "true",
                        "concat-ref": ref,
                        "concat-total": str(len(parts)),
                        "concat-part": str(i),
                    }
                )
            requests.append(self._request("/vonage/inbound", params, method=method))
        return requests

    def receipt_request(self, message_id: str, status: str, *, err_code: str = "0") -> WebhookRequest:
        """A delivery receipt for a part Vonage sent."""
        record = next((r for r in self.sent if message_id in r["ids"]), None)
        if record is None:
            raise KeyError(f"no sent message has part {message_id}")
        stamp = self.now().strftime("%y%m%d%H%M")
        params = {
            "msisdn": record["to"],
            "to": record["from"],
            "network-code": "310260",
            "messageId": message_id,
            "price": "0.00680000",
            "status": status,
            "scts": stamp,
            "err-code": err_code,
            "api-key": self.api_key,
            "message-timestamp": self.now().strftime("%Y-%m-%d %H:%M:%S"),
        }
        if record["client-ref"]:
            params["client-ref"] = record["client-ref"]
        return self._request("/vonage/status", params)
