"""Benchmarks of the email adapter, each against a plain baseline measured in the same run.

    python benchmarks/bench_email.py           # full run (needs Dovecot for the IMAP part)
    python benchmarks/bench_email.py --quick   # smaller sizes

1. parse_message (full canonical parse: charsets, HTML sanitising, quote stripping,
   attachments) vs ``email.message_from_bytes`` alone on the same corpus.
2. thread_messages (JWZ) on 10k and 100k generated messages: time, scaling, and the cost
   of reading just the headers (``BytesHeaderParser``) as the baseline.
3. IMAP backfill of 10k messages from a throwaway Dovecot through ``ImapPoller``: msgs/s
   and tracemalloc peak, vs fetching the same messages with aioimaplib and doing nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import random
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from omnilink import ChannelContext, Inbound, IngestReport
from omnilink_email import parse_inbound, parse_message, thread_messages

BODY = (
    "Hello,\n\nmy order #{n} has not arrived yet. Could you check where it is?\n\n"
    "Thanks,\nCustomer {n}\n\nOn Mon, Jan 8, 2024 at 10:14 AM Acme Support <support@acme.test> wrote:\n"
    "> We shipped it yesterday.\n> Best, Sam\n"
)


def plain(n: int) -> bytes:
    return (
        (
            f"From: Customer {n} <c{n}@example.com>\r\nTo: support@acme.test\r\nSubject: Order {n}\r\n"
            f"Message-ID: <p{n}@example.com>\r\nDate: Mon, 08 Jan 2024 10:00:00 +0000\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{BODY.format(n=n)}"
        )
        .replace("\n", "\r\n")
        .replace("\r\r\n", "\r\n")
        .encode()
    )


def rich(n: int) -> bytes:
    text = BODY.format(n=n)
    html = "<html><body>" + "".join(f"<p>{line}</p>" for line in text.splitlines()) + "</body></html>"
    return (
        f"From: =?utf-8?q?Jos=C3=A9_{n}?= <j{n}@example.com>\r\nTo: support@acme.test\r\n"
        f"Subject: =?utf-8?q?Re=3A_Caf=C3=A9_{n}?=\r\nMessage-ID: <r{n}@example.com>\r\n"
        f"References: <p{n}@example.com>\r\nDate: Mon, 08 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        '--m\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
        f"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
        f"--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--a--\r\n"
        '--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="invoice.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + "JVBERi0xLjQK" * 40 + "\r\n--m--\r\n"
    ).encode()


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f} msgs/s"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_parse(n: int) -> None:
    corpus = [plain(i) if i % 2 else rich(i) for i in range(n)]
    baseline = timed(lambda: [email.message_from_bytes(raw) for raw in corpus])
    baseline_default = timed(lambda: [email.message_from_bytes(raw, policy=policy.default) for raw in corpus])
    ours = timed(lambda: [parse_message(raw) for raw in corpus])
    print(f"\n1. parse_message on {n:,} messages (half plain, half multipart + HTML + PDF)")
    print(f"   email.message_from_bytes (compat32)   {rate(n, baseline)}")
    print(f"   email.message_from_bytes (default)    {rate(n, baseline_default)}")
    print(f"   omnilink_email.parse_message          {rate(n, ours)}")
    print(f"   ratio parse_message / message_from_bytes: {ours / baseline:.1f}x the time")


def mailbox(n: int, seed: int = 7) -> list[bytes]:
    """n messages in threads of 1–8, replies referencing their parent, some subjects reused."""
    rng = random.Random(seed)
    out: list[bytes] = []
    thread = 0
    while len(out) < n:
        thread += 1
        size = rng.randint(1, 8)
        refs: list[str] = []
        subject = f"Question {thread}" if rng.random() < 0.9 else rng.choice(["Hello", "Help", "Question"])
        for k in range(min(size, n - len(out))):
            mid = f"t{thread}.{k}@example.com"
            headers = [
                f"From: c{thread}@example.com",
                "To: support@acme.test",
                f"Subject: {'Re: ' if k else ''}{subject}",
                f"Message-ID: <{mid}>",
                f"Date: {datetime.fromtimestamp(1_700_000_000 + len(out) * 60, UTC):%a, %d %b %Y %H:%M:%S}"
                " +0000",
            ]
            if refs:
                headers.append("References: " + " ".join(f"<{r}>" for r in refs[-10:]))
                headers.append(f"In-Reply-To: <{refs[-1]}>")
            out.append(("\r\n".join(headers) + "\r\n\r\nbody\r\n").encode())
            refs.append(mid)
    rng.shuffle(out)
    return out


def bench_threading(sizes: Sequence[int]) -> None:
    print("\n2. thread_messages (JWZ) on generated mailboxes (threads of 1-8, shuffled)")
    times: dict[int, float] = {}
    parser = BytesHeaderParser(policy=policy.compat32)
    for size in sizes:
        raws = mailbox(size)
        start = time.perf_counter()
        for raw in raws:
            parser.parsebytes(raw)
        baseline = time.perf_counter() - start
        start = time.perf_counter()
        groups = thread_messages(raws)
        took = time.perf_counter() - start
        times[size] = took
        print(
            f"   {size:>7,} msgs: {took:6.2f}s ({rate(size, took)}), {len(groups):,} threads; "
            f"header parse alone {baseline:.2f}s -> {took / baseline:.1f}x"
        )
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        growth = times[large] / times[small]
        print(f"   scaling {small:,} -> {large:,}: {growth:.1f}x time for {large / small:.0f}x messages")


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self.state: dict[str, str] = {}

    def context(self) -> ChannelContext:
        async def submit(items: Sequence[Inbound]) -> IngestReport:
            self.count += sum(1 for i in items if i.kind == "message")
            return IngestReport()

        return ChannelContext.standalone("email", submit=submit, state=self.state)


async def _backfill(server: Any, n: int, batch: int) -> tuple[float, int]:
    import anyio

    from omnilink_email import ImapConfig
    from omnilink_email._imap import ImapPoller

    counter = _Counter()
    config = ImapConfig(
        host=server.host,
        port=server.port,
        security="none",
        username=server.user,
        password=server.password,
        batch_size=batch,
        timeout=60,
    )
    poller = ImapPoller(config, counter.context(), lambda raw: parse_inbound(raw))
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        await tg.start(poller.run)
        with anyio.fail_after(600):
            while counter.count < n:  # noqa: ASYNC110 - polling a plain counter is the point
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    return time.perf_counter() - start, counter.count


async def _plain_fetch(server: Any, batch: int) -> tuple[float, int]:
    import aioimaplib  # type: ignore[import-untyped]

    from omnilink_email._imap import parse_fetch

    start = time.perf_counter()
    client = aioimaplib.IMAP4(host=server.host, port=server.port, timeout=60)
    await client.wait_hello_from_server()
    await client.login(server.user, server.password)
    await client.select("INBOX")
    found = await client.uid_search("UID 1:*", charset=None)
    uids = sorted(int(w) for w in bytes(found.lines[0]).split() if w.isdigit())
    count = 0
    for i in range(0, len(uids), batch):
        fetched = await client.uid("fetch", ",".join(map(str, uids[i : i + batch])), "(UID BODY.PEEK[])")
        count += len(parse_fetch(fetched.lines))
    await client.logout()
    return time.perf_counter() - start, count


def bench_imap(n: int, batches: Sequence[int] = (50, 200)) -> None:
    from omnilink_email.testing import Dovecot, ensure_dovecot

    print(f"\n3. IMAP backfill of {n:,} messages from a local Dovecot")
    reason = ensure_dovecot()
    if reason is not None:
        print(f"   skipped: {reason}")
        return
    with Dovecot() as server:
        corpus_bytes = 0
        for i in range(n):
            raw = plain(i) if i % 2 else rich(i)
            corpus_bytes += len(raw)
            server.deliver(raw)
        print(f"   mailbox: {corpus_bytes / 2**20:.1f} MiB")
        for batch in batches:
            base_time, base_count = asyncio.run(_plain_fetch(server, batch))
            took, count = asyncio.run(_backfill(server, n, batch))
            tracemalloc.start()
            asyncio.run(_backfill(server, n, batch))
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"   batch {batch}:")
            print(
                f"     aioimaplib fetch only (baseline)    {rate(base_count, base_time)}  ({base_time:.1f}s)"
            )
            print(f"     ImapPoller -> parse -> submit       {rate(count, took)}  ({took:.1f}s)")
            print(f"     ratio poller / fetch only: {took / base_time:.1f}x the time")
            print(f"     tracemalloc peak: {peak / 2**20:.1f} MiB")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--no-imap", action="store_true", help="skip the Dovecot backfill")
    args = parser.parse_args(argv)
    print(f"omnilink-email benchmarks (Python {sys.version.split()[0]})")
    bench_parse(500 if args.quick else 5_000)
    bench_threading([1_000, 10_000] if args.quick else [10_000, 100_000])
    if not args.no_imap:
        bench_imap(1_000 if args.quick else 10_000)


if __name__ == "__main__":
    main()
