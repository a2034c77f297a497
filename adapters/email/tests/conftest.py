"""Fixtures of the email adapter's tests.

aiosmtplib and aioimaplib are asyncio libraries, so every email test runs on asyncio only
(the channel raises BackendUnsupportedError on trio; test_email_channel checks that).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from omnilink_email.testing import Dovecot, SmtpSink, ensure_dovecot


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1 (no auth) that records what it receives."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def smtp_auth_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1 that requires AUTH as user / pass."""
    with SmtpSink(username="user", password="pass") as sink:
        yield sink


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot IMAP server on 127.0.0.1 with one mailbox (support@acme.test / secret).

    Installs Debian's dovecot-imapd when missing and we are root; otherwise skips, unless the
    CI environment variable is set, where a missing Dovecot fails the test.
    """
    reason = ensure_dovecot()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"Dovecot is required in CI: {reason}")
        pytest.skip(reason=reason)
    with Dovecot() as server:
        yield server
