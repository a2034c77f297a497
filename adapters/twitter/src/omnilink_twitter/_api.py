"""Calls to the X API: request signing, token refresh, rate budgets and error mapping.

Every request goes through ``XApi.request``, which

- authorises it: OAuth 1.0a user-context signing with ``oauthlib`` (form bodies are part of
  the signature base string; JSON and multipart bodies are not), or an OAuth 2.0 user token
  that is refreshed once on a 401 (``POST /2/oauth2/token``, ``grant_type=refresh_token``);
- waits for a known-exhausted rate budget to reset *before* spending a request (bounded by
  ``max_rate_wait``), tracking ``x-rate-limit-*`` headers per endpoint;
- maps X's problem-JSON errors to omnilink's typed send errors.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast
from urllib.parse import urlencode

import anyio
import httpx
from oauthlib.oauth1 import Client as OAuth1Client

from omnilink import (
    CredentialsError,
    HealthState,
    InboundHealth,
    OutcomeUnknownError,
    PermanentSendError,
    RateLimitedError,
    RecipientUnavailableError,
    RetryableSendError,
    SendError,
)

from ._config import TwitterConfig

JSON = dict[str, Any]
USAGE_CAPPED = "/problems/usage-capped"
HttpMethod = Literal["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"]
_OAUTH2_STATE_KEY = "oauth2_tokens"


@dataclass
class RateBudget:
    """One endpoint's rate-limit window as X last reported it."""

    limit: int
    remaining: int
    reset: float
    """Epoch seconds when the window resets."""


@dataclass(frozen=True)
class Problem:
    """An error answer from X, reduced to what the mapping needs."""

    status: int
    type: str
    title: str
    detail: str
    request_id: str | None

    @classmethod
    def from_response(cls, response: httpx.Response) -> Problem:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        first: JSON = errors[0] if errors and isinstance(errors[0], dict) else {}
        return cls(
            status=response.status_code,
            type=str(body.get("type") or first.get("type") or ""),
            title=str(body.get("title") or first.get("title") or ""),
            detail=str(
                body.get("detail") or first.get("detail") or first.get("message") or response.text[:300]
            ),
            request_id=response.headers.get("x-transaction-id") or response.headers.get("x-request-id"),
        )

    @property
    def text(self) -> str:
        return f"{self.status} {self.title}: {self.detail}".strip()


def endpoint_key(method: str, path: str) -> str:
    """Name a rate-limit bucket: ids in the path are replaced by ``:id``."""
    parts = [
        ":id" if p.isdigit() or ("-" in p and p.replace("-", "").isdigit()) else p for p in path.split("/")
    ]
    return f"{method.upper()} {'/'.join(parts)}"


class XApi:
    """An authorised, rate-aware client for one X account, on the Hub's httpx client."""

    def __init__(
        self,
        config: TwitterConfig,
        *,
        http: httpx.AsyncClient,
        channel: str,
        now: Callable[[], datetime],
        get_state: Callable[[str], Awaitable[str | None]],
        set_state: Callable[[str, str], Awaitable[None]],
        report: Callable[[InboundHealth], Awaitable[None]],
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.config = config
        self.http = http
        self.channel = channel
        self.now = now
        self._get_state = get_state
        self._set_state = set_state
        self._report = report
        self._sleep = sleep
        self.budgets: dict[str, RateBudget] = {}
        self._oauth2_loaded = False
        self._access_token = (
            config.oauth2_access_token.get_secret_value() if config.oauth2_access_token else None
        )
        self._refresh_token = (
            config.oauth2_refresh_token.get_secret_value() if config.oauth2_refresh_token else None
        )
        self._refresh_lock = anyio.Lock()
        self._token_generation = 0

    # ----------------------------------------------------------------------- auth

    def _oauth1_headers(
        self, method: str, url: str, form: str | None, headers: dict[str, str]
    ) -> dict[str, str]:
        config = self.config
        assert config.access_token is not None
        assert config.access_token_secret is not None
        client = OAuth1Client(
            config.consumer_key,
            client_secret=config.consumer_secret.get_secret_value(),
            resource_owner_key=config.access_token,
            resource_owner_secret=config.access_token_secret.get_secret_value(),
        )
        _, signed, _ = client.sign(url, cast(HttpMethod, method.upper()), form, headers)
        return dict(signed)

    async def _load_oauth2(self) -> None:
        if self._oauth2_loaded:
            return
        self._oauth2_loaded = True
        saved = await self._get_state(_OAUTH2_STATE_KEY)
        if saved:
            tokens = json.loads(saved)
            self._access_token = tokens.get("access_token") or self._access_token
            self._refresh_token = tokens.get("refresh_token") or self._refresh_token

    async def _refresh(self, generation: int) -> None:
        """Refresh the OAuth 2.0 token once, however many requests saw the 401 together."""
        async with self._refresh_lock:
            if generation != self._token_generation:
                return  # another request refreshed meanwhile
            if self._refresh_token is None or self.config.oauth2_client_id is None:
                raise CredentialsError(
                    "the OAuth 2.0 access token was refused and there is no refresh token",
                    channel=self.channel,
                )
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self._refresh_token,
                "client_id": self.config.oauth2_client_id,
            }
            headers: dict[str, str] = {}
            if self.config.oauth2_client_secret is not None:
                pair = f"{self.config.oauth2_client_id}:{self.config.oauth2_client_secret.get_secret_value()}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            try:
                response = await self.http.post(self._url("/2/oauth2/token"), data=form, headers=headers)
            except httpx.HTTPError as exc:
                raise RetryableSendError(f"token refresh failed: {exc}", channel=self.channel) from exc
            if response.status_code >= 500:
                raise RetryableSendError(
                    f"token refresh failed: {response.status_code}", channel=self.channel
                )
            body = response.json() if response.status_code == 200 else {}
            if response.status_code != 200 or "access_token" not in body:
                raise CredentialsError(
                    f"X refused the OAuth 2.0 refresh token ({response.status_code}): {response.text[:200]}",
                    channel=self.channel,
                    provider_code="invalid_grant",
                )
            self._access_token = str(body["access_token"])
            self._refresh_token = str(body.get("refresh_token") or self._refresh_token)
            self._token_generation += 1
            await self._set_state(
                _OAUTH2_STATE_KEY,
                json.dumps({"access_token": self._access_token, "refresh_token": self._refresh_token}),
            )

    # ----------------------------------------------------------------------- budgets

    def _url(self, path: str) -> str:
        return self.config.api_base.rstrip("/") + path

    async def _wait_for_budget(self, key: str) -> None:
        budget = self.budgets.get(key)
        if budget is None or budget.remaining > 0:
            return
        wait = budget.reset - self.now().timestamp()
        if wait <= 0:
            return
        if wait > self.config.max_rate_wait:
            raise RateLimitedError(
                f"{key}: rate budget exhausted until the window resets",
                channel=self.channel,
                retry_after=math.ceil(wait),
            )
        await self._sleep(wait)

    def _record_budget(self, key: str, headers: httpx.Headers) -> None:
        try:
            budget = RateBudget(
                limit=int(headers["x-rate-limit-limit"]),
                remaining=int(headers["x-rate-limit-remaining"]),
                reset=float(headers["x-rate-limit-reset"]),
            )
        except (KeyError, ValueError):
            return
        self.budgets[key] = budget

    # ----------------------------------------------------------------------- requests

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: JSON | None = None,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        data: Mapping[str, str] | None = None,
        sending: bool = True,
    ) -> JSON:
        """Make one API call and return its JSON body; raise a typed SendError on failure.

        ``sending`` says whether the request creates something (a DM, a post): a timeout after
        such a request is OutcomeUnknownError, for a read it is retryable.
        """
        key = endpoint_key(method, path)
        url = self._url(path)
        if params:
            url = f"{url}?{urlencode(params)}"
        await self._wait_for_budget(key)
        budget = self.budgets.get(key)
        if budget is not None and budget.remaining > 0:
            budget.remaining -= 1  # reserve a slot so concurrent sends see it
        if self.config.uses_oauth2:
            await self._load_oauth2()
        refreshed = False
        while True:
            generation = self._token_generation
            response = await self._send_once(method, url, json_body, form, files, data, sending)
            self._record_budget(key, response.headers)
            if response.status_code == 401 and self.config.uses_oauth2 and not refreshed:
                refreshed = True
                await self._refresh(generation)
                continue
            break
        if response.status_code < 300:
            if not response.content:
                return {}
            body = response.json()
            return body if isinstance(body, dict) else {"data": body}
        await self._raise_for(response, key)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(
        self,
        method: str,
        url: str,
        json_body: JSON | None,
        form: Mapping[str, str] | None,
        files: Mapping[str, tuple[str, bytes, str]] | None,
        data: Mapping[str, str] | None,
        sending: bool,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        content: bytes | None = None
        form_text: str | None = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            form_text = urlencode(form)
            content = form_text.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.config.uses_oauth2:
            headers["Authorization"] = f"Bearer {self._access_token}"
        else:
            headers = self._oauth1_headers(method, url, form_text, headers)
        try:
            if files is not None:
                return await self.http.request(method, url, headers=headers, files=files, data=data)
            return await self.http.request(method, url, headers=headers, content=content)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RetryableSendError(f"cannot reach X: {exc!r}", channel=self.channel) from exc
        except httpx.HTTPError as exc:
            if sending:
                raise OutcomeUnknownError(
                    f"X did not answer the request: {exc!r}", channel=self.channel
                ) from exc
            raise RetryableSendError(f"X did not answer: {exc!r}", channel=self.channel) from exc

    async def _raise_for(self, response: httpx.Response, key: str) -> None:
        problem = Problem.from_response(response)
        status = problem.status
        detail = problem.detail.lower()
        common: dict[str, Any] = {"channel": self.channel, "request_id": problem.request_id}
        if status == 429:
            if problem.type.endswith(USAGE_CAPPED) or "usage cap" in detail:
                await self._report(
                    InboundHealth(
                        account=self.config.user_id, state=HealthState.USAGE_CAPPED, detail=problem.text
                    )
                )
                raise RetryableSendError(
                    f"X usage cap reached: {problem.detail}",
                    provider_code="usage-capped",
                    retry_after=self.config.usage_cap_retry_after,
                    **common,
                )
            budget = self.budgets.get(key)
            now = self.now().timestamp()
            retry_after = 60.0  # X always sends x-rate-limit-reset; this is for when it does not
            if budget is not None and budget.reset > now:
                retry_after = max(budget.reset - now, 1.0)
                budget.remaining = 0
            elif "retry-after" in response.headers:
                retry_after = float(response.headers["retry-after"])
            raise RateLimitedError(f"{key}: {problem.text}", retry_after=math.ceil(retry_after), **common)
        if status == 401:
            raise CredentialsError(
                f"X refused our credentials: {problem.text}", provider_code="401", **common
            )
        code = problem.type.rsplit("/", 1)[-1] or str(status)
        if status == 403 or status == 400 or status == 404:
            if "duplicate content" in detail or "duplicate" in detail:
                raise PermanentSendError(
                    f"X refused a duplicate: {problem.detail}", provider_code="duplicate", **common
                )
            if "suspended" in detail and ("your account" in detail or "this account" in detail):
                raise CredentialsError(
                    f"our X account is suspended: {problem.detail}", provider_code=code, **common
                )
            if code in ("client-forbidden", "unsupported-authentication"):
                raise CredentialsError(
                    f"X refused this app or token: {problem.text}", provider_code=code, **common
                )
            if (
                code in ("not-authorized-for-resource", "resource-unavailable")
                or "direct message" in detail
                or "not permitted" in detail
                or "suspended" in detail
            ):
                raise RecipientUnavailableError(
                    f"X will not deliver to this recipient: {problem.detail}", provider_code=code, **common
                )
            raise PermanentSendError(f"X refused the request: {problem.text}", provider_code=code, **common)
        if status >= 500:
            raise RetryableSendError(f"X failed: {problem.text}", provider_code=str(status), **common)
        raise SendError(f"unexpected answer from X: {problem.text}", provider_code=str(status), **common)
