"""Sending over SMTP with aiosmtplib, SMTP replies mapped to omnilink's send errors.

aiosmtplib is built on asyncio: on any other event loop (trio) sending raises
``BackendUnsupportedError``.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import aiosmtplib
import sniffio

from omnilink import (
    BackendUnsupportedError,
    CredentialsError,
    OutcomeUnknownError,
    PermanentSendError,
    RecipientUnavailableError,
    RetryableSendError,
    SendError,
)

from ._config import SmtpConfig

__all__ = ["require_asyncio", "send_smtp"]


def require_asyncio(what: str) -> None:
    """Raise BackendUnsupportedError unless running under asyncio."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return
    if library != "asyncio":
        raise BackendUnsupportedError(
            f"{what} uses an asyncio-only library and cannot run on {library}; "
            "run the Hub under asyncio (anyio.run(..., backend='asyncio')) to use it"
        )


def _tls_context(config: SmtpConfig) -> ssl.SSLContext | None:
    if config.security == "none":
        return None
    context = ssl.create_default_context(cafile=config.cert_bundle)
    if not config.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _error_for(code: int, text: str, channel: str, stage: str) -> SendError:
    message = f"SMTP {stage} refused: {code} {text}".strip()
    if code in (530, 534, 535):
        return CredentialsError(message, channel=channel, provider_code=str(code))
    if 400 <= code < 500:
        return RetryableSendError(message, channel=channel, provider_code=str(code))
    if stage == "recipient" and code in (550, 551, 553):
        return RecipientUnavailableError(message, channel=channel, provider_code=str(code))
    return PermanentSendError(message, channel=channel, provider_code=str(code))


async def send_smtp(
    config: SmtpConfig, message: EmailMessage, *, sender: str, recipients: list[str], channel: str = "email"
) -> str:
    """Hand ``message`` to the SMTP server; returns the server's final reply text.

    4xx replies raise RetryableSendError, 5xx PermanentSendError (550/551/553 on a recipient:
    RecipientUnavailableError), authentication failures CredentialsError, a connection that
    cannot be made RetryableSendError, and a connection lost mid-transaction
    OutcomeUnknownError.
    """
    require_asyncio("sending email over SMTP (aiosmtplib)")
    password = config.password.get_secret_value() if config.password else None
    try:
        _errors, reply = await aiosmtplib.send(
            message,
            sender=sender,
            recipients=recipients,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=password,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            tls_context=_tls_context(config),
            timeout=config.timeout,
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise CredentialsError(
            f"SMTP authentication failed: {exc.code} {exc.message}",
            channel=channel,
            provider_code=str(exc.code),
        ) from exc
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0] if exc.recipients else None
        if first is None:
            raise PermanentSendError("SMTP refused every recipient", channel=channel) from exc
        raise _error_for(first.code, first.message, channel, "recipient") from exc
    except aiosmtplib.SMTPRecipientRefused as exc:
        raise _error_for(exc.code, exc.message, channel, "recipient") from exc
    except aiosmtplib.SMTPSenderRefused as exc:
        raise _error_for(exc.code, exc.message, channel, "sender") from exc
    except aiosmtplib.SMTPDataError as exc:
        raise _error_for(exc.code, exc.message, channel, "message") from exc
    except aiosmtplib.SMTPConnectError as exc:
        # Covers connect timeouts and a 4xx/5xx greeting: nothing was sent.
        code = getattr(exc, "code", None)
        if isinstance(code, int) and 500 <= code < 600:
            raise PermanentSendError(f"SMTP server refused the connection: {exc}", channel=channel) from exc
        raise RetryableSendError(f"cannot connect to the SMTP server: {exc}", channel=channel) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise _error_for(exc.code, exc.message, channel, "command") from exc
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
        raise OutcomeUnknownError(
            f"SMTP connection lost before the server confirmed the message: {exc}", channel=channel
        ) from exc
    except aiosmtplib.SMTPException as exc:
        raise PermanentSendError(f"SMTP failed: {exc}", channel=channel) from exc
    except OSError as exc:
        raise RetryableSendError(f"cannot reach the SMTP server: {exc}", channel=channel) from exc
    return reply
