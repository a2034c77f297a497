"""Receiving over IMAP from a real Dovecot: backfill, IDLE, polling, restarts, reconnection."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import omnilink_email._plugin as email_plugin
from omnilink import ChannelContext, Hub, Inbound, InboundHealth, InboundMessage, IngestReport, MemoryStore
from omnilink_email import ImapConfig, parse_inbound, parse_message
from omnilink_email._imap import ImapPoller, parse_fetch
from omnilink_email.testing import Dovecot, SmtpSink

pytestmark = pytest.mark.anyio


def mail(i: int, *, subject: str = "Question") -> bytes:
    return (
        f"From: Customer {i} <customer{i}@example.com>\r\nTo: support@acme.test\r\n"
        f"Subject: {subject} {i}\r\nMessage-ID: <imap-{i}@example.com>\r\n"
        f"Date: Mon, 08 Jan 2024 10:00:00 +0000\r\n\r\nMessage number {i}\r\n"
    ).encode()


class Inbox:
    """A ChannelContext stand-in: durable state in a dict, submitted items in a list."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.items: list[Inbound] = []
        self.fail_submits = 0

    def context(self) -> ChannelContext:
        async def submit(items: Sequence[Inbound]) -> IngestReport:
            if self.fail_submits:
                self.fail_submits -= 1
                raise RuntimeError("store unavailable")
            self.items.extend(items)
            return IngestReport()

        return ChannelContext.standalone("email", submit=submit, state=self.state)

    @property
    def message_ids(self) -> list[str]:
        return [i.provider_message_id for i in self.items if isinstance(i, InboundMessage)]


def imap_config(server: Dovecot, **kw: Any) -> ImapConfig:
    return ImapConfig(
        host=server.host,
        port=server.port,
        security="none",
        username=server.user,
        password=server.password,  # type: ignore[arg-type]
        timeout=10,
        **kw,
    )


@asynccontextmanager
async def polling(server: Dovecot, inbox: Inbox, **kw: Any) -> AsyncIterator[ImapPoller]:
    poller = ImapPoller(imap_config(server, **kw), inbox.context(), lambda raw: parse_inbound(raw))
    async with anyio.create_task_group() as tg:
        await tg.start(poller.run)
        yield poller
        tg.cancel_scope.cancel()


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0) -> None:
    with anyio.fail_after(timeout):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await anyio.sleep(0.05)


def test_parse_fetch_reads_literals_and_uids() -> None:
    lines = [
        b"1 FETCH (UID 7 BODY[] {3}",
        bytearray(b"abc"),
        b")",
        b"2 FETCH (BODY[] {2}",
        bytearray(b"de"),
        b" UID 9)",
        b"Fetch completed.",
    ]
    assert parse_fetch(lines) == [(7, b"abc"), (9, b"de")]


async def test_backfill_reads_every_message_in_batches_in_uid_order(dovecot: Dovecot) -> None:
    for i in range(7):
        dovecot.deliver(mail(i))
    inbox = Inbox()
    async with polling(dovecot, inbox, batch_size=3) as poller:
        await until(lambda: len(inbox.message_ids) == 7)
        assert poller.imported == 7
    assert inbox.message_ids == [f"imap-{i}@example.com" for i in range(7)]
    cursor = json.loads(next(iter(inbox.state.values())))
    assert cursor["last_uid"] == 7
    assert cursor["uidvalidity"] > 0


async def test_new_mail_arrives_through_idle(dovecot: Dovecot) -> None:
    inbox = Inbox()
    async with polling(dovecot, inbox, idle=True) as poller:
        await until(lambda: poller.connected.is_set())
        await anyio.sleep(0.2)
        await anyio.to_thread.run_sync(dovecot.append, mail(1))
        await until(lambda: len(inbox.message_ids) == 1, timeout=10)
        dovecot.deliver(mail(2))
        await until(lambda: len(inbox.message_ids) == 2, timeout=10)
    assert inbox.message_ids == ["imap-1@example.com", "imap-2@example.com"]


async def test_polling_without_idle_finds_new_mail(dovecot: Dovecot) -> None:
    inbox = Inbox()
    async with polling(dovecot, inbox, idle=False, poll_interval=0.2) as poller:
        await until(lambda: poller.connected.is_set())
        dovecot.deliver(mail(1))
        await until(lambda: len(inbox.message_ids) == 1)


async def test_restart_does_not_import_again_and_catches_up(dovecot: Dovecot) -> None:
    inbox = Inbox()
    dovecot.deliver(mail(1))
    async with polling(dovecot, inbox):
        await until(lambda: len(inbox.message_ids) == 1)
    dovecot.deliver(mail(2))  # arrives while we are down
    async with polling(dovecot, inbox):
        await until(lambda: len(inbox.message_ids) == 2)
        await anyio.sleep(0.3)
    assert inbox.message_ids == ["imap-1@example.com", "imap-2@example.com"]


async def test_cursor_moves_only_after_submit_commits(dovecot: Dovecot) -> None:
    inbox = Inbox()
    inbox.fail_submits = 1
    dovecot.deliver(mail(1))
    async with polling(dovecot, inbox, batch_size=1):
        await until(lambda: len(inbox.message_ids) == 1)  # retried after the failed submit
    assert inbox.message_ids == ["imap-1@example.com"]
    assert any(isinstance(i, InboundMessage) for i in inbox.items)


async def test_new_uidvalidity_reads_the_mailbox_again(dovecot: Dovecot) -> None:
    inbox = Inbox()
    dovecot.deliver(mail(1))
    async with polling(dovecot, inbox):
        await until(lambda: len(inbox.message_ids) == 1)
    key = next(iter(inbox.state))
    inbox.state[key] = json.dumps({"uidvalidity": 1, "last_uid": 99})
    async with polling(dovecot, inbox):
        await until(lambda: len(inbox.message_ids) == 2)  # read again; the Hub's dedupe drops it
    assert json.loads(inbox.state[key])["uidvalidity"] != 1


async def test_poller_reconnects_after_the_server_drops_it(dovecot: Dovecot) -> None:
    inbox = Inbox()
    async with polling(dovecot, inbox) as poller:
        await until(lambda: poller.connected.is_set())
        await anyio.sleep(0.2)
        await anyio.to_thread.run_sync(dovecot.kick)
        dovecot.deliver(mail(5))
        await until(lambda: len(inbox.message_ids) == 1, timeout=20)
    assert any(isinstance(i, InboundHealth) and i.state.value == "disconnected" for i in inbox.items)


async def test_wrong_password_reports_credentials_invalid(dovecot: Dovecot) -> None:
    inbox = Inbox()
    config = ImapConfig.model_validate({**imap_config(dovecot).model_dump(), "password": "wrong"})
    poller = ImapPoller(config, inbox.context(), lambda raw: parse_inbound(raw))
    async with anyio.create_task_group() as tg:
        await tg.start(poller.run)
        await until(lambda: any(isinstance(i, InboundHealth) for i in inbox.items))
        tg.cancel_scope.cancel()
    health = [i for i in inbox.items if isinstance(i, InboundHealth)]
    assert health[0].state.value == "credentials_invalid", health


async def test_hub_imports_imap_mail_and_threads_it(dovecot: Dovecot) -> None:
    dovecot.deliver(mail(1, subject="Refund"))
    config = {
        "address": "support@acme.test",
        "token_secret": "imap-secret-0123456789",
        "imap": {
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": dovecot.user,
            "password": dovecot.password,
        },
    }
    async with Hub(
        store=MemoryStore(), channels={"email": config}, plugins=[email_plugin], load_entry_points=False
    ) as hub:

        async def one_message() -> bool:
            convs = await hub.conversations()
            return bool(convs) and len(await hub.messages(convs[0].id)) == 1

        await until(one_message)
        (conv,) = await hub.conversations()
        (msg,) = await hub.messages(conv.id)
        assert msg.text == "Message number 1"
        assert parse_message(mail(1, subject="Refund")).subject_key == conv.subject_key


async def test_imap_inbound_reply_and_customer_answer_share_a_conversation(
    dovecot: Dovecot, smtp_sink: SmtpSink
) -> None:
    """The whole loop on real servers: IMAP in, SMTP out, the customer's answer (which kept
    only In-Reply-To and changed the subject) back in over IMAP, in the same conversation."""
    config = {
        "address": "support@acme.test",
        "token_secret": "imap-secret-0123456789",
        "inbound_domain": "in.acme.test",
        "smtp": {"host": smtp_sink.host, "port": smtp_sink.port, "security": "none", "timeout": 10},
        "imap": {
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": dovecot.user,
            "password": dovecot.password,
            "poll_interval": 0.2,
        },
    }
    dovecot.deliver(mail(1, subject="Broken kettle"))
    async with Hub(
        store=MemoryStore(), channels={"email": config}, plugins=[email_plugin], load_entry_points=False
    ) as hub:

        async def messages_in_one_conversation(count: int) -> bool:
            convs = await hub.conversations()
            return len(convs) == 1 and len(await hub.messages(convs[0].id)) == count

        await until(lambda: messages_in_one_conversation(1))
        (conv,) = await hub.conversations()
        reply = await hub.reply(conv.id, "Sorry! Which model?")
        await hub.drain(timeout=10)
        ours = (await hub.message(reply.id)).provider_message_id
        answer = (
            "From: customer1@example.com\r\nTo: support@acme.test\r\nSubject: model number\r\n"
            f"Message-ID: <answer@example.com>\r\nIn-Reply-To: <{ours}>\r\n"
            "Date: Tue, 09 Jan 2024 10:00:00 +0000\r\n\r\nIt is the K-200.\r\n"
        ).encode()
        dovecot.deliver(answer)
        await until(lambda: messages_in_one_conversation(3))
        texts = [m.text for m in await hub.messages(conv.id)]
        assert "It is the K-200." in texts
