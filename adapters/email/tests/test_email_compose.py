"""compose_message: headers we write, and the refusals that protect them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnilink import AddressError, ContentError, OutboundMessage, TextPart
from omnilink_email import HeaderInjectionError, compose_message, reply_subject, validate_address
from omnilink_email._mime import safe_filename


def outbound(**kw: object) -> OutboundMessage:
    base: dict[str, object] = {
        "message_id": "msg_1",
        "conversation_id": "cnv_1",
        "account": "support@acme.test",
        "thread_key": "jo@example.com",
        "recipient": "jo@example.com",
        "parts": (TextPart(text="hi"),),
        "subject": "Order",
    }
    base.update(kw)
    return OutboundMessage.model_validate(base)


def compose(message: OutboundMessage, **kw: object) -> object:
    args: dict[str, object] = {
        "from_address": "support@acme.test",
        "from_name": "Acme",
        "message_id": "id@acme.test",
        "date": datetime(2024, 1, 1, tzinfo=UTC),
    }
    args.update(kw)
    return compose_message(message, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "extra"),
    [
        (outbound(subject="Hi\r\nBcc: victim@example.net"), {}),
        (outbound(subject="Hi\nX: y"), {}),
        (outbound(reply_to_provider_id="a@x>\r\nBcc: v@example.net"), {}),
        (outbound(references=("ok@x", "bad\n@x")), {}),
        (outbound(), {"from_name": "Acme\r\nBcc: victim@example.net"}),
        (outbound(), {"message_id": "x@y\r\nBcc: v@example.net"}),
    ],
)
def test_cr_or_lf_in_any_header_is_refused(message: OutboundMessage, extra: dict[str, object]) -> None:
    with pytest.raises(HeaderInjectionError) as info:
        compose(message, **extra)
    assert isinstance(info.value, ContentError)


@pytest.mark.parametrize(
    "address", ["jo@example.com\r\nBcc: v@x.y", "not an address", "a@b", "", "jo@@example.com"]
)
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(AddressError):
        validate_address(address)


def test_addresses_are_normalised() -> None:
    assert validate_address(" Jo@Example.COM ") == "jo@example.com"
    assert validate_address("mailto:jo@example.com") == "jo@example.com"


def test_references_are_trimmed_keeping_the_root() -> None:
    refs = tuple(f"r{i}@x" for i in range(40))
    msg = compose(outbound(references=refs, reply_to_provider_id="last@x"))
    header = str(msg["References"])  # type: ignore[index]
    assert header.startswith("<r0@x>")
    assert header.endswith("<last@x>")
    assert header.count("<") == 20


def test_reply_gets_one_re_and_new_mail_none() -> None:
    assert compose(outbound(subject="RE: Re: Order", reply_to_provider_id="p@x"))["Subject"] == "Re: Order"  # type: ignore[index]
    assert compose(outbound(subject="Order"))["Subject"] == "Order"  # type: ignore[index]
    assert reply_subject("Order") == "Re: Order"


def test_missing_attachment_data_is_a_content_error() -> None:
    from omnilink import MediaPart

    with pytest.raises(ContentError):
        compose(outbound(parts=(MediaPart(url="https://x.test/a.pdf", content_type="application/pdf"),)))


@given(st.text(max_size=80), st.sampled_from(["application/pdf", "image/png", "weird/x"]), st.integers(1, 9))
def test_safe_filename_has_no_path_or_control_characters(name: str, ctype: str, index: int) -> None:
    cleaned = safe_filename(name, ctype, index)
    assert cleaned
    assert not any(c in cleaned for c in '/\\:*?"<>|')
    assert not any(ord(c) < 32 or ord(c) == 127 for c in cleaned)
    assert not cleaned.startswith(".")
    assert len(cleaned) <= 150
