"""The X-Hub-Signature-256 check: agrees with a direct HMAC, refuses any tampering."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from omnilink_messenger import sign, verify_signature

secrets_ = st.one_of(st.text(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))


def _direct(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def test_known_signature_vector_is_accepted() -> None:
    body = b'{"object":"page","entry":[]}'
    header = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert verify_signature("s3cret", body, header)
    assert verify_signature(b"s3cret", body, header)


@given(secret=secrets_, body=st.binary(max_size=2048))
def test_signature_check_agrees_with_a_direct_hmac(secret: str | bytes, body: bytes) -> None:
    header = _direct(secret, body)
    assert sign(secret, body) == header
    assert verify_signature(secret, body, header)


@given(secret=secrets_, body=st.binary(min_size=1, max_size=2048), data=st.data())
def test_signature_check_refuses_any_tampered_body_byte(
    secret: str | bytes, body: bytes, data: st.DataObject
) -> None:
    header = _direct(secret, body)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(body)
    tampered[index] ^= flip
    assert not verify_signature(secret, bytes(tampered), header)


@given(secret=secrets_, other=secrets_, body=st.binary(max_size=512))
def test_signature_check_refuses_another_secret(secret: str | bytes, other: str | bytes, body: bytes) -> None:
    key = secret.encode() if isinstance(secret, str) else secret
    other_key = other.encode() if isinstance(other, str) else other
    if key == other_key:
        return
    assert not verify_signature(other, body, _direct(secret, body))


@given(body=st.binary(max_size=256), data=st.data())
def test_signature_check_refuses_a_tampered_digest(body: bytes, data: st.DataObject) -> None:
    header = _direct("k", body)
    index = data.draw(st.integers(len("sha256="), len(header) - 1))
    replacement = data.draw(st.sampled_from("0123456789abcdef").filter(lambda c: c != header[index]))
    assert not verify_signature("k", body, header[:index] + replacement + header[index + 1 :])


def test_missing_malformed_or_legacy_headers_are_refused() -> None:
    body = b"{}"
    good = _direct("k", body)
    assert not verify_signature("k", body, None)
    assert not verify_signature("k", body, "")
    assert not verify_signature("k", body, good[len("sha256=") :])
    assert not verify_signature("k", body, "sha1=" + hmac.new(b"k", body, hashlib.sha1).hexdigest())
    assert not verify_signature("k", body, good[:-1])
    assert not verify_signature("k", body, good + "0")
    assert not verify_signature("k", body, "sha256=\u00e4" + good[8:])


def test_signature_is_over_raw_ascii_escaped_bytes_not_reserialised_json() -> None:
    raw = b'{"text":"M\\u00fcller"}'
    header = _direct("k", raw)
    assert verify_signature("k", raw, header)
    assert not verify_signature("k", '{"text":"Müller"}'.encode(), header)
