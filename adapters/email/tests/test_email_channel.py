"""The email channel in a Hub: webhooks in, SMTP out, threading by token, references, subject."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import omnilink_email._plugin as email_plugin
from omnilink import (
    BackendUnsupportedError,
    ChannelContext,
    DeliveryStatus,
    Direction,
    HtmlPart,
    Hub,
    InboundMessage,
    MemoryStore,
    TextPart,
    WebhookRequest,
)
from omnilink_email import EmailChannel, EmailConfig, attachment_bytes, parse_message
from omnilink_email.testing import SmtpFault, SmtpSink, mailgun_request, postmark_request, sendgrid_request

pytestmark = pytest.mark.anyio

SECRET = "token-secret-0123456789"
MAILGUN_KEY = "key-mailgun"
SENDGRID_SECRET = "sg-path-secret"


def settings(sink: SmtpSink | None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "address": "support@acme.test",
        "from_name": "Acme Support",
        "token_secret": SECRET,
        "inbound_domain": "in.acme.test",
        "mailgun_signing_key": MAILGUN_KEY,
        "sendgrid_secret": SENDGRID_SECRET,
        "postmark_username": "pm",
        "postmark_password": "pm-pass",
    }
    if sink is not None:
        cfg["smtp"] = {"host": sink.host, "port": sink.port, "security": "none", "timeout": 10}
    return cfg


@pytest.fixture
async def hub(smtp_sink: SmtpSink) -> AsyncIterator[Hub]:
    async with Hub(
        store=MemoryStore(),
        channels={"email": settings(smtp_sink)},
        plugins=[email_plugin],
        load_entry_points=False,
    ) as opened:
        yield opened


def mail(
    *,
    sender: str = "Jo Bloggs <jo@example.com>",
    to: str = "support@acme.test",
    subject: str = "Where is my parcel?",
    mid: str = "first@example.com",
    body: str = "My parcel has not arrived.",
    extra: str = "",
) -> bytes:
    head = (
        f"From: {sender}\nTo: {to}\nSubject: {subject}\nMessage-ID: <{mid}>\n"
        "Date: Mon, 08 Jan 2024 10:00:00 +0000\n"
    )
    return (
        (head + extra + "Content-Type: text/plain; charset=utf-8\n\n" + body + "\n")
        .replace("\n", "\r\n")
        .encode()
    )


async def receive(hub: Hub, raw: bytes, **kw: Any) -> int:
    response = await hub.handle_webhook("email", mailgun_request(raw, signing_key=MAILGUN_KEY, **kw))
    return response.status


async def test_inbound_mail_opens_a_conversation_and_the_reply_is_threaded(
    hub: Hub, smtp_sink: SmtpSink
) -> None:
    assert await receive(hub, mail()) == 200
    (conv,) = await hub.conversations()
    (inbound,) = await hub.messages(conv.id)
    assert inbound.text == "My parcel has not arrived."
    assert inbound.provider_message_id == "first@example.com"
    reply = await hub.reply(conv.id, "It is on its way.")
    await hub.drain(timeout=10)
    sent = await hub.message(reply.id)
    assert sent.status is DeliveryStatus.SENT
    (out,) = smtp_sink.received
    msg = out.message
    assert out.recipients == ("jo@example.com",)
    assert msg["Subject"] == "Re: Where is my parcel?"
    assert msg["In-Reply-To"] == "<first@example.com>"
    assert "<first@example.com>" in msg["References"]
    assert msg["Message-ID"] == f"<{sent.provider_message_id}>"
    assert str(msg["Reply-To"]).startswith("reply+")
    assert str(msg["Reply-To"]).endswith("@in.acme.test")
    assert msg["From"] == "Acme Support <support@acme.test>"
    assert "Auto-Submitted" not in msg


async def test_customer_reply_by_references_joins_the_conversation(hub: Hub, smtp_sink: SmtpSink) -> None:
    await receive(hub, mail())
    (conv,) = await hub.conversations()
    reply = await hub.reply(conv.id, "Which order number?")
    await hub.drain(timeout=10)
    ours = (await hub.message(reply.id)).provider_message_id
    answer = mail(
        subject="totally different subject", mid="second@example.com", extra=f"In-Reply-To: <{ours}>\n"
    )
    assert await receive(hub, answer) == 200
    assert len(await hub.conversations()) == 1
    messages = await hub.messages(conv.id)
    assert [m.provider_message_id for m in messages if m.direction is Direction.INBOUND] == [
        "first@example.com",
        "second@example.com",
    ]


async def test_customer_reply_to_the_token_address_joins_the_conversation(
    hub: Hub, smtp_sink: SmtpSink
) -> None:
    await receive(hub, mail())
    (conv,) = await hub.conversations()
    await hub.reply(conv.id, "Which order number?")
    await hub.drain(timeout=10)
    token_address = str(smtp_sink.received[0].message["Reply-To"])
    # A client that dropped every threading header and rewrote the subject.
    answer = mail(to=token_address, subject="order 1234", mid="third@example.com")
    assert await receive(hub, answer) == 200
    assert len(await hub.conversations()) == 1
    stored = [m for m in await hub.messages(conv.id) if m.provider_message_id == "third@example.com"]
    assert stored
    assert stored[0].threading is not None
    assert stored[0].threading.rule == "token"


async def test_same_subject_from_the_same_sender_joins_weakly(hub: Hub) -> None:
    await receive(hub, mail())
    await receive(hub, mail(subject="RE: Where is my parcel?", mid="again@example.com"))
    (conv,) = await hub.conversations()
    later = [m for m in await hub.messages(conv.id) if m.provider_message_id == "again@example.com"]
    assert later[0].threading is not None
    assert later[0].threading.rule == "subject"
    assert later[0].threading.strength.value == "weak"


async def test_mailgun_wrong_signature_is_refused_and_stores_nothing(hub: Hub) -> None:
    assert await receive(hub, mail(), signature="00" * 32) == 403
    assert await hub.conversations() == []


async def test_mailgun_stale_timestamp_is_refused(hub: Hub) -> None:
    assert await receive(hub, mail(), timestamp=time.time() - 3600) == 403
    assert await hub.conversations() == []


async def test_mailgun_token_reused_for_another_message_is_refused(hub: Hub) -> None:
    assert await receive(hub, mail(), token="t" * 50) == 200
    assert await receive(hub, mail(mid="other@example.com", body="forged"), token="t" * 50) == 403
    (conv,) = await hub.conversations()
    assert len(await hub.messages(conv.id)) == 1


async def test_mailgun_redelivery_is_stored_once(hub: Hub) -> None:
    request = mailgun_request(mail(), signing_key=MAILGUN_KEY)
    for _ in range(3):
        assert (await hub.handle_webhook("email", request)).status == 200
    (conv,) = await hub.conversations()
    assert len(await hub.messages(conv.id)) == 1


RICH = (
    b"From: =?utf-8?q?Jos=C3=A9?= <jose@example.com>\r\nTo: support@acme.test\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?=\r\nMessage-ID: <rich@example.com>\r\nReferences: <a@x> <b@x>\r\n"
    b"Date: Mon, 08 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
    b'--m\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
    b"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello caf\xc3\xa9\r\n"
    b"--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <b>caf\xc3\xa9</b></p>\r\n--a--\r\n"
    b'--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="invoice.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--m--\r\n"
)


def comparable(item: object) -> dict[str, Any]:
    assert isinstance(item, InboundMessage)
    data = item.model_dump(exclude={"raw"})
    return data


@pytest.mark.parametrize(
    "build",
    [
        lambda raw: mailgun_request(raw, signing_key=MAILGUN_KEY),
        lambda raw: mailgun_request(raw, signing_key=MAILGUN_KEY, mime=True),
        lambda raw: sendgrid_request(raw, secret=SENDGRID_SECRET),
        lambda raw: sendgrid_request(raw, secret=SENDGRID_SECRET, via="basic"),
        lambda raw: sendgrid_request(raw, secret=SENDGRID_SECRET, raw_mode=True),
        lambda raw: postmark_request(raw, username="pm", password="pm-pass"),
    ],
    ids=["mailgun", "mailgun-mime", "sendgrid-path", "sendgrid-basic", "sendgrid-raw", "postmark"],
)
async def test_every_webhook_gives_the_same_message_as_the_raw_mime(hub: Hub, build: Any) -> None:
    request: WebhookRequest = build(RICH)
    result = await hub.channel("email").handle_webhook(request)
    (item,) = result.items
    expected = parse_message(RICH, account="support@acme.test", token_secret=SECRET, received_at=item.sent_at)  # type: ignore[union-attr]
    assert comparable(item) == comparable(expected)
    body = item.parts[0]  # type: ignore[union-attr]
    assert isinstance(body, HtmlPart)
    assert body.text == "Hello café"


@pytest.mark.parametrize(
    "request_",
    [
        sendgrid_request(RICH, secret="wrong"),
        sendgrid_request(RICH, secret="wrong", via="basic"),
        postmark_request(RICH, username="pm", password="wrong"),
    ],
    ids=["sendgrid-path", "sendgrid-basic", "postmark"],
)
async def test_webhooks_without_the_right_secret_are_refused(hub: Hub, request_: WebhookRequest) -> None:
    assert (await hub.handle_webhook("email", request_)).status == 401
    assert await hub.conversations() == []


async def test_unknown_webhook_path_is_404(hub: Hub) -> None:
    request = WebhookRequest.build("POST", "https://h/webhooks/email/other", {}, b"", path="/other")
    assert (await hub.handle_webhook("email", request)).status == 404


async def test_malformed_postmark_body_is_refused_with_403(hub: Hub) -> None:
    good = postmark_request(RICH, username="pm", password="pm-pass")
    bad = WebhookRequest.build("POST", good.url, good.headers, b"{not json", path="/postmark")
    assert (await hub.handle_webhook("email", bad)).status == 403


async def test_bounce_of_our_reply_marks_it_failed(hub: Hub, smtp_sink: SmtpSink) -> None:
    await receive(hub, mail())
    (conv,) = await hub.conversations()
    reply = await hub.reply(conv.id, "Here you go")
    await hub.drain(timeout=10)
    ours = (await hub.message(reply.id)).provider_message_id
    dsn = (
        "From: MAILER-DAEMON@mx.example.com\nTo: support@acme.test\nSubject: Undelivered\n"
        "Message-ID: <dsn1@mx.example.com>\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
        "--r\nContent-Type: text/plain\n\nFailed.\n"
        "--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
        "Final-Recipient: rfc822; jo@example.com\nAction: failed\nStatus: 5.2.2\n"
        "Diagnostic-Code: smtp; 552 mailbox full\n\n"
        f"--r\nContent-Type: text/rfc822-headers\n\nMessage-ID: <{ours}>\nSubject: Re: x\n\n--r--\n"
    ).replace("\n", "\r\n")
    # A bounce must arrive as raw MIME (Mailgun's "mime" route) to keep its report structure.
    assert await receive(hub, dsn.encode(), mime=True) == 200
    failed = await hub.message(reply.id)
    assert failed.status is DeliveryStatus.FAILED
    assert failed.error is not None
    assert "mailbox full" in failed.error
    assert len(await hub.messages(conv.id)) == 2  # the bounce is not a customer message


async def test_auto_reply_is_stored_as_automatic(hub: Hub) -> None:
    await receive(hub, mail(extra="Auto-Submitted: auto-replied\n", mid="ooo@example.com"))
    (conv,) = await hub.conversations()
    (msg,) = await hub.messages(conv.id)
    assert msg.automatic is True


async def test_smtp_550_fails_the_reply_with_the_server_text(hub: Hub, smtp_sink: SmtpSink) -> None:
    await receive(hub, mail())
    (conv,) = await hub.conversations()
    smtp_sink.fail(SmtpFault("550 5.1.1 User unknown", stage="rcpt"))
    reply = await hub.reply(conv.id, "Hello?")
    await hub.drain(timeout=10)
    failed = await hub.message(reply.id)
    assert failed.status is DeliveryStatus.FAILED
    assert failed.error is not None
    assert "User unknown" in failed.error


async def test_smtp_450_is_retried_until_accepted(hub: Hub, smtp_sink: SmtpSink) -> None:
    await receive(hub, mail())
    (conv,) = await hub.conversations()
    smtp_sink.fail(SmtpFault("450 4.2.1 Try again", stage="rcpt"))
    reply = await hub.reply(conv.id, "Hello again")
    await hub.drain(timeout=15)
    assert (await hub.message(reply.id)).status is DeliveryStatus.SENT
    assert len(smtp_sink.received) == 1


async def test_header_injection_in_the_subject_fails_the_send(hub: Hub, smtp_sink: SmtpSink) -> None:
    await receive(hub, mail())
    (conv,) = await hub.conversations()
    reply = await hub.reply(conv.id, "x", subject="Hi\r\nBcc: victim@example.net")
    await hub.drain(timeout=10)
    failed = await hub.message(reply.id)
    assert failed.status is DeliveryStatus.FAILED
    assert smtp_sink.received == []


async def test_automatic_reply_to_a_robot_is_refused(hub: Hub) -> None:
    await receive(hub, mail(sender="MAILER-DAEMON@mx.example.com", mid="robot@example.com"))
    (conv,) = await hub.conversations()
    with pytest.raises(Exception, match="robots"):
        await hub.reply(conv.id, "Thanks for your mail!", automatic=True)


async def test_automatic_reply_carries_auto_submitted(hub: Hub, smtp_sink: SmtpSink) -> None:
    await receive(hub, mail())
    (conv,) = await hub.conversations()
    await hub.reply(conv.id, "We got your mail.", automatic=True)
    await hub.drain(timeout=10)
    assert smtp_sink.received[0].message["Auto-Submitted"] == "auto-replied"


async def test_html_reply_is_multipart_alternative(hub: Hub, smtp_sink: SmtpSink) -> None:
    await receive(hub, mail())
    (conv,) = await hub.conversations()
    await hub.reply(conv.id, [HtmlPart(html="<p>Hi <b>there</b></p>", text="Hi there")])
    await hub.drain(timeout=10)
    msg = smtp_sink.received[0].message
    assert msg.get_content_type() == "multipart/alternative"
    parsed = parse_message(smtp_sink.received[0].data)
    assert parsed.parts == (HtmlPart(html="<p>Hi <b>there</b></p>", text="Hi there"),)


def test_smtp_channel_refuses_to_open_on_trio() -> None:
    async def main() -> None:
        context = ChannelContext.standalone("email")
        config = EmailConfig.model_validate(
            {**settings(None), "smtp": {"host": "127.0.0.1", "port": 25, "security": "none"}}
        )
        with pytest.raises(BackendUnsupportedError, match="asyncio"):
            await EmailChannel(config, context).open()
        # Webhooks alone work on trio.
        webhook_only = EmailChannel(EmailConfig.model_validate(settings(None)), context)
        await webhook_only.open()

    anyio.run(main, backend="trio")


async def test_text_reply_round_trips_as_text(hub: Hub, smtp_sink: SmtpSink) -> None:
    await receive(hub, mail())
    (conv,) = await hub.conversations()
    await hub.reply(conv.id, "Plain answer\nsecond line")
    await hub.drain(timeout=10)
    assert parse_message(smtp_sink.received[0].data).parts == (TextPart(text="Plain answer\nsecond line"),)


async def test_starting_a_conversation_sends_new_mail_with_the_subject(hub: Hub, smtp_sink: SmtpSink) -> None:
    message = await hub.start_conversation(
        "email", "New.Customer@Example.com", "Your order shipped.", subject="Order 1234"
    )
    await hub.drain(timeout=10)
    (out,) = smtp_sink.received
    assert out.recipients == ("new.customer@example.com",)
    assert out.message["Subject"] == "Order 1234"
    assert "In-Reply-To" not in out.message
    assert (await hub.message(message.id)).status is DeliveryStatus.SENT


@pytest.mark.parametrize("provider", ["mailgun", "sendgrid", "postmark"])
async def test_reply_token_only_in_the_envelope_still_threads(hub: Hub, provider: str) -> None:
    """The customer Bcc'd our reply address: it is in the envelope, not in To/Cc."""
    import json as json_lib

    from omnilink_email import reply_address
    from omnilink_email._webhooks import parse_form

    token = reply_address(SECRET, "cnv_envelope", "in.acme.test")
    raw = mail(to="someone-else@example.org", mid="bcc@example.com")
    if provider == "mailgun":
        request = mailgun_request(raw, signing_key=MAILGUN_KEY, recipient=token)
    elif provider == "sendgrid":
        base = sendgrid_request(raw, secret=SENDGRID_SECRET)
        form = parse_form(base.header("content-type"), base.body)
        from omnilink_email.testing import encode_form

        fields: list[tuple[str, bytes | str, str | None, str | None]] = [
            (
                k,
                json_lib.dumps({"to": [token], "from": "jo@example.com"}) if k == "envelope" else f.data,
                None,
                None,
            )
            for k, f in form.items()
        ]
        content_type, body = encode_form(fields)
        request = WebhookRequest.build("POST", base.url, {"content-type": content_type}, body, path=base.path)
    else:
        base = postmark_request(raw, username="pm", password="pm-pass")
        payload = json_lib.loads(base.body)
        payload["OriginalRecipient"] = token
        request = WebhookRequest.build(
            "POST", base.url, base.headers, json_lib.dumps(payload).encode(), path=base.path
        )
    result = await hub.channel("email").handle_webhook(request)
    (item,) = result.items
    assert isinstance(item, InboundMessage)
    assert item.conversation_hint == "cnv_envelope"


async def test_auto_reply_is_never_answered_automatically(hub: Hub, smtp_sink: SmtpSink) -> None:
    from omnilink import PolicyRefusal

    await receive(hub, mail(extra="X-Autoreply: yes\n", mid="ooo2@example.com"))
    (conv,) = await hub.conversations()
    with pytest.raises(PolicyRefusal) as info:
        await hub.reply(conv.id, "Thanks for your message!", automatic=True)
    assert info.value.rule == "answer_to_automatic"
    await hub.reply(conv.id, "A person answering is fine.")
    await hub.drain(timeout=10)
    assert len(smtp_sink.received) == 1


async def test_webhooks_reach_the_channel_through_the_hubs_asgi_app(hub: Hub) -> None:
    import httpx

    transport = httpx.ASGITransport(app=hub.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://helpdesk.example") as client:
        mg = mailgun_request(mail(mid="asgi-1@example.com"), signing_key=MAILGUN_KEY)
        sg = sendgrid_request(mail(mid="asgi-2@example.com"), secret=SENDGRID_SECRET)
        pm = postmark_request(mail(mid="asgi-3@example.com"), username="pm", password="pm-pass")
        for request in (mg, sg, pm):
            response = await client.post(
                f"/webhooks/email{request.path}", content=request.body, headers=dict(request.headers)
            )
            assert response.status_code == 200, response.text
    (conv,) = await hub.conversations()
    ids = {m.provider_message_id for m in await hub.messages(conv.id)}
    assert ids == {"asgi-1@example.com", "asgi-2@example.com", "asgi-3@example.com"}


async def test_attachments_are_fetched_with_the_hubs_http_client(smtp_sink: SmtpSink) -> None:
    import httpx

    from omnilink import MediaPart

    seen: list[str] = []

    def files(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/gone.pdf":
            return httpx.Response(404)
        return httpx.Response(200, content=b"%PDF-1.4 remote")

    async with Hub(
        store=MemoryStore(),
        channels={"email": settings(smtp_sink)},
        plugins=[email_plugin],
        load_entry_points=False,
        transport=httpx.MockTransport(files),
    ) as hub:
        await receive(hub, mail())
        (conv,) = await hub.conversations()
        await hub.reply(
            conv.id,
            [
                TextPart(text="Two files attached."),
                MediaPart(
                    url="https://files.example/invoice.pdf",
                    content_type="application/pdf",
                    filename="invoice.pdf",
                ),
                MediaPart(
                    url="data:text/plain;base64,aGVsbG8=", content_type="text/plain", filename="note.txt"
                ),
            ],
        )
        missing = await hub.reply(
            conv.id, [MediaPart(url="https://files.example/gone.pdf", content_type="application/pdf")]
        )
        await hub.drain(timeout=10)
        assert (await hub.message(missing.id)).status is DeliveryStatus.FAILED
    (out,) = smtp_sink.received
    blobs = sorted(attachment_bytes(out.data).values())
    assert blobs == [b"%PDF-1.4 remote", b"hello"]
    assert "https://files.example/invoice.pdf" in seen
