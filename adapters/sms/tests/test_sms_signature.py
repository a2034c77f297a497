"""X-Twilio-Signature: Twilio's documented example, tampering, ports, repeated names, JSON."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from omnilink_sms import twilio_signature, verify_twilio_signature
from omnilink_sms._signature import verify_body_hash

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
EXPECTED = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_documented_example() -> None:
    assert twilio_signature(TOKEN, URL, PARAMS) == EXPECTED
    assert verify_twilio_signature(TOKEN, URL, PARAMS, EXPECTED)


def test_pairs_and_mappings_sign_alike_in_any_order() -> None:
    pairs = list(reversed(list(PARAMS.items())))
    assert twilio_signature(TOKEN, URL, pairs) == EXPECTED


def test_url_is_accepted_with_or_without_the_default_port() -> None:
    assert verify_twilio_signature(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, EXPECTED)
    signed_with_port = twilio_signature(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS)
    assert verify_twilio_signature(TOKEN, URL, PARAMS, signed_with_port)
    assert not verify_twilio_signature(
        TOKEN, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", PARAMS, EXPECTED
    )


def test_repeated_names_sign_sorted_deduplicated_values() -> None:
    one = twilio_signature(TOKEN, URL, [("MediaUrl", "b"), ("MediaUrl", "a"), ("MediaUrl", "b")])
    assert one == twilio_signature(TOKEN, URL, {"MediaUrl": ["a", "b"]})
    assert one == twilio_signature(TOKEN, URL + "", [("MediaUrl", "a"), ("MediaUrl", "b")])
    assert verify_twilio_signature(TOKEN, URL, {"MediaUrl": ("b", "a")}, one)


@given(st.data())
def test_any_tampered_parameter_is_refused(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(PARAMS)))
    new_value = data.draw(st.text(max_size=20).filter(lambda v: v != PARAMS[name]))
    assert not verify_twilio_signature(TOKEN, URL, {**PARAMS, name: new_value}, EXPECTED)
    extra = data.draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in PARAMS))
    assert not verify_twilio_signature(TOKEN, URL, {**PARAMS, extra: "x"}, EXPECTED)
    assert not verify_twilio_signature(TOKEN, URL, {k: v for k, v in PARAMS.items() if k != name}, EXPECTED)


@given(st.data())
def test_any_tampered_url_token_or_signature_byte_is_refused(data: st.DataObject) -> None:
    def flip(text: str) -> str:
        index = data.draw(st.integers(0, len(text) - 1))
        char = data.draw(st.characters(codec="ascii").filter(lambda c: c != text[index]))
        return text[:index] + char + text[index + 1 :]

    tampered_url = flip(URL)
    from omnilink_sms._signature import url_variants

    if URL not in url_variants(tampered_url):
        assert not verify_twilio_signature(TOKEN, tampered_url, PARAMS, EXPECTED)
    assert not verify_twilio_signature(flip(TOKEN), URL, PARAMS, EXPECTED)
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, flip(EXPECTED))


def test_missing_signature_is_refused() -> None:
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, "")


def test_json_bodies_sign_the_url_with_its_body_hash() -> None:
    body = b'{"Body":"hi"}'
    url = f"https://hd.example/webhooks/sms/twilio/inbound?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = twilio_signature(TOKEN, url, None)
    assert verify_body_hash(url, body)
    assert verify_twilio_signature(TOKEN, url, None, signature)
    assert not verify_body_hash(url, body + b" ")
    assert not verify_body_hash("https://hd.example/webhooks/sms/twilio/inbound", body)


def test_malformed_urls_are_refused_not_raised() -> None:
    assert not verify_twilio_signature(TOKEN, "https://mycompany:com/x", PARAMS, EXPECTED)
    assert not verify_twilio_signature(TOKEN, "https://[::1/x", PARAMS, EXPECTED)
