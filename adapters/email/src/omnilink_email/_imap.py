"""Receiving over IMAP (aioimaplib): a durable UID cursor, IDLE or polling, reconnection.

The cursor is ``{"uidvalidity": …, "last_uid": …}`` in the channel's state and only moves
after ``context.submit`` returned (the batch is committed), so a restart re-reads at most one
batch (the Hub dedupes it) and never skips mail. A new UIDVALIDITY means the server renumbered
the mailbox: we read it again from the start and let the Hub's dedupe drop what it has.
aioimaplib is asyncio-only.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import aioimaplib  # type: ignore[import-untyped]
import anyio
from anyio.abc import TaskStatus

from omnilink import ChannelContext, HealthState, Inbound, InboundDelivery, InboundHealth, InboundMessage

from ._config import ImapConfig
from ._mime import NotAnEmailError
from ._smtp import require_asyncio

__all__ = ["ImapError", "ImapPoller", "parse_fetch"]

_FETCH = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"UID (\d+)")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


class ImapError(Exception):
    """The IMAP server refused a command (internal: triggers a reconnect)."""


class _LoginRefused(ImapError):
    pass


def parse_fetch(lines: Sequence[bytes | bytearray]) -> list[tuple[int, bytes]]:
    """(UID, message bytes) pairs from the lines of a ``UID FETCH … (UID BODY.PEEK[])``."""
    out: list[tuple[int, bytes]] = []
    uid: int | None = None
    literal: bytes | None = None
    for line in lines:
        if isinstance(line, bytearray):
            literal = bytes(line)
            continue
        if _FETCH.match(line):
            if uid is not None and literal is not None:
                out.append((uid, literal))
            found = _UID.search(line)
            uid = int(found.group(1)) if found else None
            literal = None
        elif uid is None and literal is not None and (found := _UID.search(line)):
            uid = int(found.group(1))  # servers may put UID after the literal
    if uid is not None and literal is not None:
        out.append((uid, literal))
    return out


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class ImapPoller:
    """Reads new mail from one IMAP mailbox into the Hub until cancelled."""

    def __init__(
        self,
        config: ImapConfig,
        context: ChannelContext,
        parse: Callable[[bytes], InboundMessage | InboundDelivery],
        *,
        account: str | None = None,
    ) -> None:
        self.config = config
        self.context = context
        self.parse = parse
        self.account = account
        self.state_key = f"imap:{config.username}@{config.host}:{config.port}/{config.mailbox}"
        self.imported = 0
        """Messages handed to the Hub since start (for tests and benchmarks)."""
        self.connected = anyio.Event()

    async def run(self, *, task_status: TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
        require_asyncio("receiving email over IMAP (aioimaplib)")
        task_status.started()
        delay = 1.0
        healthy = True
        while True:
            try:
                await self._session()
            except Exception as exc:  # any failure ends the session; cancellation is not an Exception
                state = (
                    HealthState.CREDENTIALS_INVALID
                    if isinstance(exc, _LoginRefused)
                    else HealthState.DISCONNECTED
                )
                self.context.log.warning("IMAP %s: %s; reconnecting in %.0fs", self.state_key, exc, delay)
                if healthy:
                    healthy = False
                    await self._health(state, str(exc))
                await anyio.sleep(delay)
                delay = min(delay * 2, self.config.backoff_max)
            else:
                delay = 1.0

    async def _health(self, state: HealthState, detail: str) -> None:
        try:
            await self.context.submit([InboundHealth(account=self.account, state=state, detail=detail)])
        except Exception:  # health is advisory; never let it stop the poller
            self.context.log.debug("could not report IMAP health", exc_info=True)

    async def _connect(self) -> aioimaplib.IMAP4:
        cfg = self.config
        client: aioimaplib.IMAP4
        if cfg.security == "tls":
            context = ssl.create_default_context()
            if not cfg.validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            client = aioimaplib.IMAP4_SSL(
                host=cfg.host, port=cfg.port, timeout=cfg.timeout, ssl_context=context
            )
        else:
            client = aioimaplib.IMAP4(host=cfg.host, port=cfg.port, timeout=cfg.timeout)
        with anyio.fail_after(cfg.timeout):
            await client.wait_hello_from_server()
        response = await client.login(cfg.username, cfg.password.get_secret_value())
        if response.result != "OK":
            raise _LoginRefused(f"IMAP login refused: {self._text(response.lines)}")
        return client

    @staticmethod
    def _text(lines: Sequence[bytes | bytearray]) -> str:
        return " ".join(bytes(line).decode("utf-8", "replace") for line in lines)[:300]

    async def _cursor(self, uidvalidity: int) -> int:
        try:
            saved = json.loads(await self.context.get_state(self.state_key) or "{}")
        except ValueError:
            saved = {}
        if saved.get("uidvalidity") != uidvalidity:
            if saved:
                self.context.log.warning(
                    "IMAP %s: UIDVALIDITY changed; reading the mailbox again", self.state_key
                )
            await self._save(uidvalidity, 0)
            return 0
        return int(saved.get("last_uid", 0))

    async def _save(self, uidvalidity: int, last_uid: int) -> None:
        await self.context.set_state(
            self.state_key, json.dumps({"uidvalidity": uidvalidity, "last_uid": last_uid})
        )

    async def _session(self) -> None:
        client = await self._connect()
        try:
            selected = await client.select(self.config.mailbox)
            if selected.result != "OK":
                raise ImapError(f"cannot select {self.config.mailbox!r}: {self._text(selected.lines)}")
            found = next((m for line in selected.lines if (m := _UIDVALIDITY.search(bytes(line)))), None)
            if found is None:
                raise ImapError("the server sent no UIDVALIDITY")
            uidvalidity = int(found.group(1))
            last_uid = await self._cursor(uidvalidity)
            if not self.connected.is_set():
                self.connected.set()
            await self._health(HealthState.OK, "connected")
            use_idle = self.config.idle and client.has_capability("IDLE")
            while True:
                last_uid = await self._import_new(client, uidvalidity, last_uid)
                if use_idle:
                    await self._idle(client)
                else:
                    await anyio.sleep(self.config.poll_interval)
                    noop = await client.noop()
                    if noop.result != "OK":
                        raise ImapError(f"NOOP failed: {self._text(noop.lines)}")
        finally:
            with anyio.move_on_after(1, shield=True):
                try:
                    await client.logout()
                except Exception:  # the connection may already be gone
                    self.context.log.debug("IMAP logout failed", exc_info=True)

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        """Wait in IDLE until the mailbox grows or the IDLE period ends."""
        idle = await client.idle_start(timeout=self.config.idle_timeout)
        closing = False
        try:
            while True:
                try:
                    pushed = await client.wait_server_push(timeout=self.config.idle_timeout)
                except TimeoutError:
                    return
                if isinstance(pushed, str):
                    if "STOP" in pushed:
                        return  # aioimaplib ended IDLE on its own timeout
                    continue
                lines = [bytes(line) for line in pushed]
                if any(line.startswith(b"BYE") for line in lines):
                    closing = True
                    raise ImapError(f"the server closed the session: {self._text(lines)}")
                if any(b"EXISTS" in line for line in lines):
                    return
        finally:
            if not closing:
                client.idle_done()
                with anyio.fail_after(self.config.timeout):
                    await idle

    async def _import_new(self, client: aioimaplib.IMAP4, uidvalidity: int, last_uid: int) -> int:
        found = await client.uid_search(f"UID {last_uid + 1}:*", charset=None)
        if found.result != "OK":
            raise ImapError(f"UID SEARCH failed: {self._text(found.lines)}")
        uids = sorted(
            {int(word) for word in bytes(found.lines[0]).split() if word.isdigit() and int(word) > last_uid}
        )
        for batch in _chunks(uids, self.config.batch_size):
            fetched = await client.uid("fetch", ",".join(map(str, batch)), "(UID BODY.PEEK[])")
            if fetched.result != "OK":
                raise ImapError(f"UID FETCH failed: {self._text(fetched.lines)}")
            items: list[Inbound] = []
            for uid, raw in sorted(parse_fetch(fetched.lines)):
                try:
                    items.append(self.parse(raw))
                except NotAnEmailError as exc:
                    self.context.log.warning(
                        "IMAP %s: UID %d is not an email (%s); skipped", self.state_key, uid, exc
                    )
            if items:
                await self.context.submit(items)
            self.imported += len(items)
            last_uid = batch[-1]
            await self._save(uidvalidity, last_uid)
        return last_uid
