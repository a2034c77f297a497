"""Fixtures of the email adapter's tests.

aiosmtplib and aioimaplib are asyncio libraries, so every email test runs on asyncio only
(the channel raises BackendUnsupportedError on trio; test_email_channel checks that).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omnilink_email.testing import SmtpSink


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
