"""Property: what we build and send over SMTP parses back to the same content and threading."""

from __future__ import annotations

import html
import string
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnilink import HtmlPart, MediaPart, OutboundMessage, TextPart
from omnilink_email import (
    attachment_bytes,
    compose_message,
    conversation_from_message_id,
    make_message_id,
    parse_message,
    sanitize_html,
)
from omnilink_email._smtp import send_smtp
from omnilink_email.testing import Dovecot, SmtpSink

pytestmark = pytest.mark.anyio

SECRET = "roundtrip-secret-0123"

texts = (
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")) | st.just("\n"), min_size=1, max_size=300
    )
    .map(lambda t: t.rstrip("\n"))
    .filter(lambda t: t.strip() != "")
)
ids = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12).map(
    lambda s: f"{s}@example.com"
)
filenames = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=20)
content_types = st.sampled_from(["application/pdf", "image/png", "text/csv", "application/octet-stream"])


@st.composite
def outbound_messages(draw: st.DrawFn) -> tuple[OutboundMessage, dict[str, bytes]]:
    text = draw(texts)
    parts: list[TextPart | HtmlPart | MediaPart] = []
    if draw(st.booleans()):
        parts.append(HtmlPart(html=f"<p>{html.escape(text)}</p>", text=text))
    else:
        parts.append(TextPart(text=text))
    blobs: dict[str, bytes] = {}
    for i in range(draw(st.integers(0, 3))):
        data = draw(st.binary(max_size=2000))
        url = f"data:blob{i}"
        blobs[url] = data
        parts.append(
            MediaPart(
                url=url, content_type=draw(content_types), filename=f"{draw(filenames)}.{i}", size=len(data)
            )
        )
    references = tuple(draw(st.lists(ids, max_size=4, unique=True)))
    reply_to = draw(st.none() | ids)
    message = OutboundMessage(
        message_id="msg_rt",
        conversation_id="cnv_roundtrip",
        account="support@acme.test",
        thread_key="jo@example.com",
        recipient="jo@example.com",
        parts=tuple(parts),
        subject=draw(st.sampled_from(["Order", "Re: Order", "Café ☕ question", "RE: AW: Rückfrage"])),
        reply_to_provider_id=reply_to,
        references=references,
    )
    return message, blobs


@pytest.fixture(scope="module")
def module_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def check_round_trip(outbound: OutboundMessage, blobs: dict[str, bytes], raw: bytes, message_id: str) -> None:
    parsed = parse_message(raw, token_secret=SECRET)
    assert parsed.provider_message_id == message_id
    assert conversation_from_message_id(SECRET, parsed.provider_message_id) == "cnv_roundtrip"
    body = outbound.parts[0]
    if isinstance(body, HtmlPart):
        assert parsed.parts[0] == HtmlPart(html=sanitize_html(body.html), text=body.text)
    else:
        assert parsed.parts[0] == body
    sent_media = [p for p in outbound.parts if isinstance(p, MediaPart)]
    got_media = [p for p in parsed.parts if isinstance(p, MediaPart)]
    assert [(m.filename, m.content_type) for m in got_media] == [
        (m.filename, m.content_type) for m in sent_media
    ]
    stored = attachment_bytes(raw)
    assert [stored[m.url] for m in got_media] == [blobs[m.url] for m in sent_media]
    expected_refs = list(outbound.references)
    if outbound.reply_to_provider_id and outbound.reply_to_provider_id not in expected_refs:
        expected_refs.append(outbound.reply_to_provider_id)
    assert list(parsed.references) == expected_refs
    assert parsed.reply_to_provider_id == (
        outbound.reply_to_provider_id or (expected_refs[-1] if expected_refs else None)
    )
    if expected_refs:
        assert parsed.subject is not None
        assert parsed.subject.startswith("Re: ")
        assert not parsed.subject.lower().startswith("re: re:")


async def build_and_send(
    sink: SmtpSink, outbound: OutboundMessage, blobs: dict[str, bytes]
) -> tuple[bytes, str]:
    from omnilink_email import SmtpConfig

    message_id = make_message_id(
        SECRET, outbound.conversation_id, "acme.test", stable_key=outbound.idempotency_key
    )
    msg = compose_message(
        outbound,
        from_address="support@acme.test",
        from_name="Acme",
        message_id=message_id,
        date=datetime.now(UTC),
        attachments=blobs,
    )
    before = len(sink.received)
    config = SmtpConfig(host=sink.host, port=sink.port, security="none", timeout=10)
    await send_smtp(config, msg, sender="support@acme.test", recipients=[outbound.recipient])
    assert len(sink.received) == before + 1
    return sink.received[-1].data, message_id


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=outbound_messages())
async def test_build_send_receive_parse_preserves_content_and_threading(
    module_sink: SmtpSink, case: tuple[OutboundMessage, dict[str, bytes]]
) -> None:
    outbound, blobs = case
    raw, message_id = await build_and_send(module_sink, outbound, blobs)
    check_round_trip(outbound, blobs, raw, message_id)


async def test_round_trip_through_smtp_and_a_real_imap_mailbox(smtp_sink: SmtpSink, dovecot: Dovecot) -> None:
    import aioimaplib  # type: ignore[import-untyped]

    from omnilink_email._imap import parse_fetch

    outbound = OutboundMessage(
        message_id="msg_rt",
        conversation_id="cnv_roundtrip",
        account="support@acme.test",
        thread_key="jo@example.com",
        recipient="jo@example.com",
        parts=(
            HtmlPart(html="<p>Hello <b>there</b></p>", text="Hello there"),
            MediaPart(url="data:a", content_type="application/pdf", filename="a.pdf"),
        ),
        subject="Order",
        reply_to_provider_id="first@example.com",
        references=("root@example.com",),
    )
    blobs = {"data:a": b"%PDF-1.4 fake"}
    raw, message_id = await build_and_send(smtp_sink, outbound, blobs)
    dovecot.deliver(raw)
    client = aioimaplib.IMAP4(host=dovecot.host, port=dovecot.port, timeout=10)
    await client.wait_hello_from_server()
    await client.login(dovecot.user, dovecot.password)
    await client.select("INBOX")
    fetched = await client.uid("fetch", "1:*", "(UID BODY.PEEK[])")
    await client.logout()
    ((_uid, received),) = parse_fetch(fetched.lines)
    check_round_trip(outbound, blobs, received, message_id)
