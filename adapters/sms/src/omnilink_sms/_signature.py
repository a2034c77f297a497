"""Twilio's request signature (``X-Twilio-Signature``): computing and checking it.

Twilio signs the URL it requested followed by every POST parameter, sorted by name, each as
name + value; a repeated name contributes its values sorted and deduplicated. The signature is
base64(HMAC-SHA1(auth token, that string)). For JSON bodies Twilio puts
``bodySHA256=<hex sha256(body)>`` in the query and signs the URL alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Params", "twilio_signature", "url_variants", "verify_body_hash", "verify_twilio_signature"]

Params = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]]
"""POST parameters: a mapping (a value may be a sequence for a repeated name) or pairs."""

_DEFAULT_PORTS = {"https": 443, "http": 80}


def _grouped(params: Params | None) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    if params is None:
        return groups
    pairs: Iterable[tuple[str, str | Sequence[str]]]
    pairs = params.items() if isinstance(params, Mapping) else params
    for name, value in pairs:
        values = groups.setdefault(name, set())
        if isinstance(value, str):
            values.add(value)
        else:
            values.update(value)
    return groups


def _payload(url: str, params: Params | None) -> bytes:
    pieces = [url]
    groups = _grouped(params)
    for name in sorted(groups):
        for value in sorted(groups[name]):
            pieces.append(name + value)
    return "".join(pieces).encode("utf-8")


def twilio_signature(auth_token: str, url: str, params: Params | None = None) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a request to ``url`` with ``params``."""
    digest = hmac.new(auth_token.encode("utf-8"), _payload(url, params), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """``url`` as given, plus the same URL with its default port added or removed."""
    variants = [url]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed URL is only ever compared as given
        return variants
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not parts.hostname:
        return variants
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    if port is None:
        other = f"{prefix}{host}:{default}"
    elif port == default:
        other = f"{prefix}{host}"
    else:
        return variants
    variants.append(urlunsplit((parts.scheme, other, parts.path, parts.query, parts.fragment)))
    return variants


def verify_twilio_signature(auth_token: str, url: str, params: Params | None, signature: str) -> bool:
    """Whether ``signature`` is Twilio's for this URL and these parameters.

    The URL is accepted with or without its default port, as Twilio's own validators do.
    Comparison is constant-time.
    """
    if not signature:
        return False
    given = signature.encode("utf-8")
    ok = False
    for candidate in url_variants(url):
        expected = twilio_signature(auth_token, candidate, params).encode("ascii")
        # Evaluate every variant so timing does not reveal which one matched.
        ok = hmac.compare_digest(expected, given) | ok
    return ok


def verify_body_hash(url: str, body: bytes) -> bool:
    """For JSON requests: the ``bodySHA256`` query parameter matches the body."""
    from urllib.parse import parse_qsl

    try:
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    except ValueError:
        return False
    claimed = query.get("bodySHA256")
    if claimed is None:
        return False
    actual = hashlib.sha256(body).hexdigest()
    return hmac.compare_digest(actual.encode(), claimed.lower().encode())
