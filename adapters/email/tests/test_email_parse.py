"""parse_message / parse_inbound on the shapes real mail takes, and on junk."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnilink import (
    DeliveryStatus,
    HtmlPart,
    InboundDelivery,
    InboundMessage,
    MediaPart,
    PayloadError,
    TextPart,
)
from omnilink_email import (
    NotAnEmailError,
    attachment_bytes,
    make_message_id,
    parse_inbound,
    parse_message,
    reply_address,
)

SECRET = "s3cret"


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


SIMPLE = crlf(
    """From: "Jo Bloggs" <Jo.Bloggs@Example.COM>
To: Acme Support <support@acme.test>
Subject: Where is my parcel?
Date: Mon, 08 Jan 2024 10:14:00 +0100
Message-ID: <CAF1234@mail.example.com>

Hello, my parcel has not arrived.
"""
)


def test_simple_message_becomes_the_canonical_inbound() -> None:
    msg = parse_message(SIMPLE)
    assert msg.account == "support@acme.test"
    assert msg.sender == msg.thread_key == "jo.bloggs@example.com"
    assert msg.sender_name == "Jo Bloggs"
    assert msg.provider_message_id == "CAF1234@mail.example.com"
    assert msg.parts == (TextPart(text="Hello, my parcel has not arrived."),)
    assert msg.subject == "Where is my parcel?"
    assert msg.subject_key == "where is my parcel?"
    assert msg.sent_at == datetime(2024, 1, 8, 9, 14, tzinfo=UTC)
    assert msg.automatic is False
    assert msg.raw is not None
    assert msg.raw["message_id"] == "CAF1234@mail.example.com"


def test_explicit_account_wins_over_headers() -> None:
    assert parse_message(SIMPLE, account="Help@Acme.test").account == "help@acme.test"


def test_missing_message_id_gets_a_stable_synthetic_one() -> None:
    raw = SIMPLE.replace(b"Message-ID: <CAF1234@mail.example.com>\r\n", b"")
    first = parse_message(raw).provider_message_id
    assert first == parse_message(raw).provider_message_id
    assert first != parse_message(raw + b"x").provider_message_id
    assert first.endswith("@omnilink.invalid")


def test_encoded_words_and_charsets_are_decoded() -> None:
    raw = (
        b"From: =?iso-8859-1?q?Fran=E7ois?= <francois@example.fr>\r\n"
        b"To: support@acme.test\r\n"
        b"Subject: =?utf-8?b?UmU6IEZhY3R1cmUg4oKs?=\r\n"
        b"Content-Type: text/plain; charset=koi8-r\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + "Привет".encode("koi8-r") + b"\r\n"
    )
    msg = parse_message(raw)
    assert msg.sender_name == "François"
    assert msg.subject == "Re: Facture €"
    assert msg.subject_key == "facture €"
    assert msg.parts == (TextPart(text="Привет"),)


@pytest.mark.parametrize(
    ("label", "payload", "expected"),
    [
        ("us-ascii", "café".encode(), "café"),  # UTF-8 bytes labelled ASCII
        ("iso-8859-1", "café".encode(), "café"),  # UTF-8 bytes labelled Latin-1
        ("x-unknown-charset", "café".encode(), "café"),  # a label codecs does not know
        ("windows-1252", "naïve – “quoted”".encode("cp1252"), "naïve – “quoted”"),
        ("gb2312", "你好".encode("gb18030"), "你好"),
        ("shift_jis", "こんにちは".encode("cp932"), "こんにちは"),
        ("utf-8", b"bad \xff byte", "bad ÿ byte"),  # not UTF-8 after all: read as cp1252
    ],
)
def test_mislabelled_charsets_are_read_tolerantly(label: str, payload: bytes, expected: str) -> None:
    raw = (
        b"From: a@example.com\r\nTo: support@acme.test\r\n"
        b"Content-Type: text/plain; charset=" + label.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + payload
    )
    assert parse_message(raw).parts == (TextPart(text=expected),)


ALTERNATIVE_WITH_INLINE_IMAGE = crlf(
    """From: jo@example.com
To: support@acme.test
Subject: Screenshot
Message-ID: <shot@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed"

--mixed
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

See the screenshot.
--alt
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=utf-8

<p onclick="steal()">See the <b>screenshot</b>: <img src="cid:shot1"><script>alert(1)</script></p>
--rel
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <shot1>
Content-Disposition: inline; filename="screen.png"

iVBORw0KGgo=
--rel--
--alt--
--mixed
Content-Type: application/pdf; name="../../etc/passwd\x07.pdf"
Content-Disposition: attachment; filename="../../etc/passwd\x07.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--mixed--
"""
)


def test_alternative_html_is_sanitised_and_attachments_are_referenced() -> None:
    msg = parse_message(ALTERNATIVE_WITH_INLINE_IMAGE)
    body, image, pdf = msg.parts
    assert isinstance(body, HtmlPart)
    assert body.text == "See the screenshot."
    assert "script" not in body.html
    assert "onclick" not in body.html
    assert 'src="cid:shot1"' in body.html
    assert isinstance(image, MediaPart)
    assert isinstance(pdf, MediaPart)
    assert image.content_id == "shot1"
    assert image.content_type == "image/png"
    assert image.filename == "screen.png"
    assert image.size == 8
    assert pdf.filename == "passwd_.pdf"
    assert pdf.url.startswith("attachment:")
    blobs = attachment_bytes(ALTERNATIVE_WITH_INLINE_IMAGE)
    assert blobs[pdf.url] == b"%PDF-1.4\n"
    assert blobs[image.url].startswith(b"\x89PNG")


def test_html_only_mail_gets_a_text_rendering() -> None:
    raw = crlf(
        """From: jo@example.com
To: support@acme.test
Content-Type: text/html; charset=utf-8

<html><head><style>p{}</style></head><body><p>Line one</p><p>See <a href="https://x.test/a">this</a></p></body></html>
"""
    )
    (body,) = parse_message(raw).parts
    assert isinstance(body, HtmlPart)
    assert body.text == "Line one\n\nSee this (https://x.test/a)"


def test_nested_rfc822_is_an_attachment() -> None:
    inner = "From: shop@example.net\nSubject: Invoice 42\nMessage-ID: <inv@example.net>\n\nPay up.\n"
    raw = crlf(
        f"""From: jo@example.com
To: support@acme.test
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

Forwarding the invoice.
--b
Content-Type: message/rfc822

{inner}
--b--
"""
    )
    msg = parse_message(raw)
    assert msg.parts[0] == TextPart(text="Forwarding the invoice.")
    media = msg.parts[1]
    assert isinstance(media, MediaPart)
    assert media.content_type == "message/rfc822"
    assert media.filename == "Invoice 42.eml"
    assert b"Pay up." in attachment_bytes(raw)[media.url]


def test_threading_headers_become_references_nearest_last() -> None:
    raw = SIMPLE.replace(
        b"Message-ID:", b"References: <a@x> <b@x>\r\n <c@x>\r\nIn-Reply-To: <d@x>\r\nMessage-ID:"
    )
    msg = parse_message(raw)
    assert msg.references == ("a@x", "b@x", "c@x", "d@x")
    assert msg.reply_to_provider_id == "d@x"


def test_reply_token_in_recipient_gives_conversation_hint() -> None:
    address = reply_address(SECRET, "cnv_0123456789abcdef0123456789abcdef", "in.acme.test")
    raw = SIMPLE.replace(b"To: Acme Support <support@acme.test>", f"To: {address.upper()}".encode())
    msg = parse_message(raw, token_secret=SECRET, account="support@acme.test")
    assert msg.conversation_hint == "cnv_0123456789abcdef0123456789abcdef"
    assert parse_message(raw, token_secret="other").conversation_hint is None
    assert parse_message(raw).conversation_hint is None


def test_forged_reply_token_gives_no_hint() -> None:
    raw = SIMPLE.replace(
        b"To: Acme Support <support@acme.test>", b"To: reply+cnv_1.aaaaaaaaaaaaaaaa@in.acme.test"
    )
    assert parse_message(raw, token_secret=SECRET).conversation_hint is None


def test_our_message_id_in_in_reply_to_gives_conversation_hint() -> None:
    ours = make_message_id(SECRET, "cnv_abc", "acme.test")
    raw = SIMPLE.replace(b"Message-ID:", f"In-Reply-To: <{ours}>\r\nMessage-ID:".encode())
    assert parse_message(raw, token_secret=SECRET).conversation_hint == "cnv_abc"


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated; owner-email=x@y.z",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "Precedence: bulk",
        "Precedence: auto_reply",
        "Precedence: junk",
    ],
)
def test_auto_replies_are_flagged_automatic(header: str) -> None:
    raw = SIMPLE.replace(b"Message-ID:", header.encode() + b"\r\nMessage-ID:")
    assert parse_message(raw).automatic is True


def test_auto_submitted_no_is_a_person() -> None:
    raw = SIMPLE.replace(b"Message-ID:", b"Auto-Submitted: no\r\nMessage-ID:")
    assert parse_message(raw).automatic is False


def dsn(original_id: str, action: str = "failed") -> bytes:
    return crlf(
        f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: support@acme.test
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce1@mx.example.com>
Date: Tue, 09 Jan 2024 08:00:00 +0000
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="r"

--r
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.
--r
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; nobody@example.com
Action: {action}
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.com>: Recipient address rejected

--r
Content-Type: text/rfc822-headers

From: support@acme.test
To: nobody@example.com
Subject: Re: Order
Message-ID: <{original_id}>

--r--
"""
    )


def test_dsn_bounce_becomes_a_failed_delivery_of_our_message() -> None:
    item = parse_inbound(dsn("omnilink.cnv_1.abc.def@acme.test"))
    assert isinstance(item, InboundDelivery)
    assert item.status is DeliveryStatus.FAILED
    assert item.provider_message_id == "omnilink.cnv_1.abc.def@acme.test"
    assert item.error is not None
    assert "5.1.1" in item.error


def test_dsn_asked_for_as_a_message_is_automatic() -> None:
    msg = parse_message(dsn("orig@acme.test"))
    assert msg.automatic is True
    assert msg.sender == "mailer-daemon@mx.example.com"


def test_delayed_dsn_is_an_automatic_message_not_a_delivery() -> None:
    item = parse_inbound(dsn("orig@acme.test", action="delayed"))
    assert isinstance(item, InboundMessage)
    assert item.automatic


@pytest.mark.parametrize(
    "junk",
    [b"", b"   \r\n", b"hello world", b"\x00\x01\x02\xff" * 50, b"Subject: no sender\r\n\r\nbody"],
)
def test_input_that_is_not_an_email_raises_a_typed_error(junk: bytes) -> None:
    with pytest.raises(NotAnEmailError) as info:
        parse_message(junk)
    assert isinstance(info.value, PayloadError)


def test_non_bytes_input_raises_a_typed_error() -> None:
    with pytest.raises(NotAnEmailError):
        parse_message("From: a@b.c\r\n\r\nx")  # type: ignore[arg-type]


@given(st.binary(max_size=2000))
def test_byte_soup_parses_or_raises_a_typed_error(data: bytes) -> None:
    with contextlib.suppress(NotAnEmailError):
        parse_inbound(data)


def _mangle(raw: bytes, data: st.DataObject) -> bytes:
    ops = data.draw(st.lists(st.sampled_from(["truncate", "flip", "insert", "dup"]), max_size=4))
    out = bytearray(raw)
    for op in ops:
        if not out:
            break
        i = data.draw(st.integers(0, len(out) - 1))
        if op == "truncate":
            del out[i:]
        elif op == "flip":
            out[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            out[i:i] = data.draw(st.binary(max_size=20))
        else:
            out[i:i] = out[i : i + data.draw(st.integers(0, 50))]
    return bytes(out)


@given(st.sampled_from([SIMPLE, ALTERNATIVE_WITH_INLINE_IMAGE, dsn("x@y")]), st.data())
def test_mangled_real_messages_parse_or_raise_a_typed_error(raw: bytes, data: st.DataObject) -> None:
    with contextlib.suppress(NotAnEmailError):
        parse_inbound(_mangle(raw, data), token_secret=SECRET)
