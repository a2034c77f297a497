"""A real SMTP server for tests (aiosmtpd on 127.0.0.1) that records mail and fails on demand."""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from types import TracebackType
from typing import Any, Literal

Stage = Literal["mail", "rcpt", "data"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sink accepted."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> Message:
        return BytesParser(policy=policy.default).parsebytes(self.data)


@dataclass
class SmtpFault:
    """Answer ``reply`` (e.g. ``"450 4.2.1 Mailbox busy"``) at ``stage``, ``times`` times."""

    reply: str
    stage: Stage = "rcpt"
    times: int = 1


@dataclass
class _Handler:
    sink: SmtpSink
    faults: deque[SmtpFault] = field(default_factory=deque)

    def _fault(self, stage: Stage) -> str | None:
        with self.sink._lock:
            for fault in self.faults:
                if fault.stage == stage:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault.reply
        return None

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        reply = self._fault("mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self._fault("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self._fault("data")
        if reply:
            return reply
        data = envelope.original_content or envelope.content
        mail = ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(data))
        with self.sink._lock:
            self.sink.received.append(mail)
        return "250 2.0.0 Message accepted for delivery"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class SmtpSink:
    """An SMTP server on 127.0.0.1 (aiosmtpd, in its own thread) that keeps what it receives.

    ```python
    with SmtpSink(username="u", password="p") as sink:
        ...  # send to 127.0.0.1:sink.port
        sink.fail(SmtpFault("550 5.1.1 No such user", stage="rcpt"))
        assert sink.received[0].recipients == ("jo@example.com",)
    ```
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        """``tls_context`` (a server context with a certificate) enables STARTTLS, required
        before MAIL; with ``implicit_tls`` the server speaks TLS from the first byte instead."""
        self.host = "127.0.0.1"
        self.port = 0
        self.username = username
        self.password = password
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._handler = _Handler(self)
        self._controller: Any = None
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls

    def fail(self, fault: SmtpFault) -> None:
        """Queue a reply the server gives instead of accepting."""
        with self._lock:
            self._handler.faults.append(fault)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        if self._controller is not None:
            return self
        last: Exception | None = None
        for _ in range(5):  # the free port may be taken between finding and binding it
            port = free_port(self.host)
            kwargs: dict[str, Any] = {}
            if self.username is not None:
                kwargs.update(
                    authenticator=self._authenticate,
                    # aiosmtpd cannot tell an implicit-TLS socket is encrypted: do not require it
                    auth_require_tls=self.tls_context is not None and not self.implicit_tls,
                    auth_required=True,
                )
            if self.tls_context is not None and self.implicit_tls:
                kwargs["ssl_context"] = self.tls_context
            elif self.tls_context is not None:
                kwargs.update(tls_context=self.tls_context, require_starttls=True)
            controller = Controller(self._handler, hostname=self.host, port=port, ready_timeout=10, **kwargs)
            try:
                controller.start()
            except Exception as exc:  # pragma: no cover - port race
                last = exc
                continue
            self._controller = controller
            self.port = port
            return self
        raise RuntimeError(f"could not start the SMTP sink: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
