"""Live-chat benchmark: 1,000 concurrent visitor sockets on one server process.

Run: ``python benchmarks/bench_livechat.py [--connections 1000] [--samples 300]``.

Two servers are measured in the same run, one after the other, each in its own child process
(uvicorn + Starlette, the same stack):

- **omnilink**: a Hub (MemoryStore) with the livechat channel. Every visitor says hello (a
  stored message); then agent replies go through ``hub.reply`` → outbox → dispatcher →
  ``LivechatChannel.send`` → the visitor's socket, and the visitor acknowledges delivery.
- **baseline**: a bare Starlette WebSocket endpoint that keeps sockets in a dict and pushes a
  text frame when asked. No storage, no tokens, no omnilink.

Figures: server memory per open connection (RSS growth / connections), and reply delivery
latency p50/p99 (from the agent's HTTP request to the frame arriving at the visitor), with
the omnilink/baseline ratio. Replies are sent one at a time to random connected visitors.
Everything is bounded in time (the run aborts after ``--budget`` seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import anyio
import httpx

SITE = "bench"
SECRET = "bench-secret-0123456789abcdef"


# --------------------------------------------------------------------------- servers (child)


def _bind() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _serve(app: Any) -> None:
    import uvicorn

    sock = _bind()
    config = uvicorn.Config(app, ws="auto", lifespan="off", log_level="warning", backlog=2048)
    server = uvicorn.Server(config)
    print(sock.getsockname()[1], flush=True)
    await server.serve([sock])


async def serve_omnilink() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from omnilink import Hub, MemoryStore
    from omnilink_livechat import _plugin

    config = {"site_id": SITE, "secret": SECRET, "heartbeat_seconds": 600, "messages_per_minute": 600}
    async with Hub(
        store=MemoryStore(), channels={"livechat": config}, plugins=[_plugin], load_entry_points=False
    ) as hub:

        async def reply(request: Request) -> JSONResponse:
            body = await request.json()
            message = await hub.message(body["message_id"])
            queued = await hub.reply(message.conversation_id, body["text"])
            return JSONResponse({"id": queued.id})

        app = Starlette(
            routes=[Route("/bench/reply", reply, methods=["POST"]), Mount("/", app=hub.asgi_app())]
        )
        await _serve(app)


async def serve_baseline() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    sockets: dict[str, WebSocket] = {}

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        hello = json.loads(await websocket.receive_text())
        key = hello["client"]
        sockets[key] = websocket
        await websocket.send_text(json.dumps({"type": "ack", "id": key}))
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            sockets.pop(key, None)

    async def push(request: Request) -> JSONResponse:
        body = await request.json()
        await sockets[body["message_id"]].send_text(json.dumps({"type": "message", "text": body["text"]}))
        return JSONResponse({"ok": True})

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint), Route("/bench/reply", push, methods=["POST"])])
    await _serve(app)


# --------------------------------------------------------------------------- driver


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Client:
    def __init__(self, connection: Any, key: str) -> None:
        self.connection = connection
        self.key = key
        self.waiter: anyio.Event | None = None
        self.received_at = 0.0


async def _pump(client: Client, omnilink: bool) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for raw in client.connection:
            frame = json.loads(raw)
            if frame.get("type") == "message" and frame.get("from", "agent") == "agent":
                client.received_at = time.perf_counter()
                if client.waiter is not None:
                    client.waiter.set()
                if omnilink and frame.get("provider_id"):
                    await client.connection.send(
                        json.dumps({"type": "delivered", "provider_id": frame["provider_id"]})
                    )
    except ConnectionClosed:
        pass


async def _connect(url: str, index: int, omnilink: bool) -> Client:
    from websockets.asyncio.client import connect

    connection = await connect(url, open_timeout=30, max_queue=64, ping_interval=None)
    if omnilink:
        await connection.send(json.dumps({"type": "hello", "site": SITE}))
        await connection.recv()  # welcome
        await connection.recv()  # history
        await connection.send(json.dumps({"type": "message", "client_id": f"hello{index}", "text": "hello"}))
        while True:
            frame = json.loads(await connection.recv())
            if frame["type"] == "ack":
                return Client(connection, frame["id"])
    key = f"c{index}"
    await connection.send(json.dumps({"client": key}))
    await connection.recv()
    return Client(connection, key)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(kind: str, connections: int, samples: int) -> dict[str, float]:
    omnilink = kind == "omnilink"
    process = await anyio.open_process(
        [sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, stderr=None
    )
    try:
        assert process.stdout is not None
        seen = b""
        with anyio.fail_after(30):
            while b"\n" not in seen:
                seen += await process.stdout.receive()
        port = int(seen.split(b"\n", 1)[0])
        base = f"http://127.0.0.1:{port}"
        url = f"ws://127.0.0.1:{port}/channels/livechat/ws" if omnilink else f"ws://127.0.0.1:{port}/ws"
        await anyio.sleep(0.5)
        rss_before = rss_kib(process.pid)
        clients: list[Client] = []
        limiter = anyio.CapacityLimiter(32)
        started = time.perf_counter()

        async def open_one(index: int) -> None:
            async with limiter:
                clients.append(await _connect(url, index, omnilink))

        async with anyio.create_task_group() as tg:
            for index in range(connections):
                tg.start_soon(open_one, index)
        connect_seconds = time.perf_counter() - started
        await anyio.sleep(1.0)
        rss_after = rss_kib(process.pid)

        latencies: list[float] = []
        rng = random.Random(11)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, anyio.create_task_group() as tg:
            for client in clients:
                tg.start_soon(_pump, client, omnilink)
            for i in range(samples + 20):
                client = rng.choice(clients)
                client.waiter = anyio.Event()
                sent_at = time.perf_counter()
                answer = await http.post(
                    "/bench/reply", json={"message_id": client.key, "text": f"reply {i}"}
                )
                answer.raise_for_status()
                with anyio.fail_after(10):
                    await client.waiter.wait()
                client.waiter = None
                if i >= 20:  # warm-up excluded
                    latencies.append((client.received_at - sent_at) * 1000)
            for client in clients:
                await client.connection.close()
            tg.cancel_scope.cancel()
        return {
            "connect_s": connect_seconds,
            "kib_per_conn": (rss_after - rss_before) / connections,
            "rss_mib": rss_after / 1024,
            "p50_ms": percentile(latencies, 0.50),
            "p99_ms": percentile(latencies, 0.99),
            "mean_ms": statistics.fmean(latencies),
        }
    finally:
        with anyio.CancelScope(shield=True):
            process.terminate()
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()


async def main(connections: int, samples: int, budget: float) -> None:
    print(f"live chat: {connections} concurrent visitor sockets, {samples} replies each run (2 server runs)")
    results: dict[str, dict[str, float]] = {}
    with anyio.fail_after(budget):
        for kind in ("baseline", "omnilink"):
            results[kind] = await measure(kind, connections, samples)
            r = results[kind]
            print(
                f"  {kind:<9} connect {r['connect_s']:.1f}s  memory {r['kib_per_conn']:.1f} KiB/conn"
                f" (server RSS {r['rss_mib']:.0f} MiB)  reply latency p50 {r['p50_ms']:.2f} ms"
                f"  p99 {r['p99_ms']:.2f} ms  mean {r['mean_ms']:.2f} ms"
            )
    base, ours = results["baseline"], results["omnilink"]
    memory = ours["kib_per_conn"] / max(base["kib_per_conn"], 0.1)
    print(
        f"  ratio omnilink/baseline: memory per connection x{memory:.1f},"
        f" latency p50 x{ours['p50_ms'] / base['p50_ms']:.1f}, p99 x{ours['p99_ms'] / base['p99_ms']:.1f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--budget", type=float, default=240.0, help="abort after this many seconds")
    parser.add_argument("--serve", choices=["omnilink", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "omnilink":
        anyio.run(serve_omnilink)
    elif args.serve == "baseline":
        anyio.run(serve_baseline)
    else:
        try:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        except (ImportError, ValueError, OSError):
            pass
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        anyio.run(main, args.connections, args.samples, args.budget)
