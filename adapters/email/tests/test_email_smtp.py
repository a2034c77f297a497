"""Sending over SMTP (aiosmtplib) to a real aiosmtpd server, with its refusals mapped."""

from __future__ import annotations

import os
import ssl
from datetime import UTC, datetime

import pytest

from omnilink import (
    CredentialsError,
    OutboundMessage,
    PermanentSendError,
    RecipientUnavailableError,
    RetryableSendError,
    TextPart,
)
from omnilink_email import SmtpConfig, compose_message
from omnilink_email._smtp import send_smtp
from omnilink_email.testing import SmtpFault, SmtpSink, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]


def outbound(text: str = "Hello from Acme") -> OutboundMessage:
    return OutboundMessage(
        message_id="msg_1",
        conversation_id="cnv_1",
        account="support@acme.test",
        thread_key="jo@example.com",
        recipient="jo@example.com",
        parts=(TextPart(text=text),),
        subject="Your order",
    )


def composed(text: str = "Hello from Acme") -> object:
    return compose_message(
        outbound(text),
        from_address="support@acme.test",
        from_name="Acme",
        message_id="id1@acme.test",
        date=datetime(2024, 1, 8, tzinfo=UTC),
    )


def config(sink: SmtpSink, **kw: object) -> SmtpConfig:
    return SmtpConfig(host=sink.host, port=sink.port, security="none", timeout=10, **kw)  # type: ignore[arg-type]


async def send(sink: SmtpSink, **kw: object) -> str:
    msg = composed()
    return await send_smtp(config(sink, **kw), msg, sender="support@acme.test", recipients=["jo@example.com"])  # type: ignore[arg-type]


async def test_message_reaches_the_smtp_server(smtp_sink: SmtpSink) -> None:
    reply = await send(smtp_sink)
    assert "accepted" in reply
    (mail,) = smtp_sink.received
    assert mail.sender == "support@acme.test"
    assert mail.recipients == ("jo@example.com",)
    assert mail.message["Message-ID"] == "<id1@acme.test>"
    assert "Hello from Acme" in mail.data.decode()


@pytest.mark.parametrize("reply", ["450 4.2.1 Mailbox busy, try later", "421 4.7.0 Too many connections"])
async def test_4xx_is_retryable_with_the_server_text(smtp_sink: SmtpSink, reply: str) -> None:
    smtp_sink.fail(SmtpFault(reply, stage="rcpt"))
    with pytest.raises(RetryableSendError) as info:
        await send(smtp_sink)
    assert reply.split(" ", 1)[1].split(",")[0] in str(info.value)
    assert info.value.provider_code == reply[:3]
    assert smtp_sink.received == []


async def test_550_recipient_is_permanent_with_the_server_text(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail(SmtpFault("550 5.1.1 No such user here", stage="rcpt"))
    with pytest.raises(RecipientUnavailableError) as info:
        await send(smtp_sink)
    assert isinstance(info.value, PermanentSendError)
    assert "No such user here" in str(info.value)


async def test_5xx_after_data_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail(SmtpFault("554 5.7.1 Message rejected as spam", stage="data"))
    with pytest.raises(PermanentSendError, match="rejected as spam"):
        await send(smtp_sink)


async def test_450_after_data_is_retryable(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail(SmtpFault("451 4.3.0 Local error", stage="data"))
    with pytest.raises(RetryableSendError):
        await send(smtp_sink)


async def test_authenticated_send_succeeds(smtp_auth_sink: SmtpSink) -> None:
    await send(smtp_auth_sink, username="user", password="pass")
    assert len(smtp_auth_sink.received) == 1


async def test_wrong_password_is_a_credentials_error(smtp_auth_sink: SmtpSink) -> None:
    with pytest.raises(CredentialsError) as info:
        await send(smtp_auth_sink, username="user", password="wrong")
    assert info.value.provider_code == "535"


async def test_unreachable_server_is_retryable() -> None:
    cfg = SmtpConfig(host="127.0.0.1", port=free_port(), security="none", timeout=5)
    with pytest.raises(RetryableSendError):
        await send_smtp(cfg, composed(), sender="support@acme.test", recipients=["jo@example.com"])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is needed to make a test certificate (.ci/run installs it)")
        pytest.skip(reason="openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            key,
            "-out",
            cert,
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def server_context(certificate: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_send_verifies_the_server_certificate(certificate: tuple[str, str], security: str) -> None:
    with SmtpSink(
        username="user",
        password="pass",
        tls_context=server_context(certificate),
        implicit_tls=security == "tls",
    ) as sink:
        config = SmtpConfig(
            host=sink.host,
            port=sink.port,
            security=security,
            username="user",
            password="pass",  # type: ignore[arg-type]
            cert_bundle=certificate[0],
            timeout=10,
        )
        await send_smtp(config, composed(), sender="support@acme.test", recipients=["jo@example.com"])  # type: ignore[arg-type]
        assert len(sink.received) == 1


async def test_untrusted_certificate_is_not_accepted(certificate: tuple[str, str]) -> None:
    with SmtpSink(tls_context=server_context(certificate)) as sink:
        config = SmtpConfig(host=sink.host, port=sink.port, security="starttls", timeout=10)
        with pytest.raises((RetryableSendError, PermanentSendError)):
            await send_smtp(config, composed(), sender="support@acme.test", recipients=["jo@example.com"])  # type: ignore[arg-type]
        assert sink.received == []
