"""A helpdesk worker process for the multi-process test: a Hub on PostgreSQL serving live chat.

Run: ``python livechat_server_process.py <dsn> <notify channel> <dispatch: 0|1>``; prints the
port it listens on (127.0.0.1, chosen by the OS) and serves until SIGTERM.
"""

from __future__ import annotations

import socket
import sys

import anyio
import uvicorn
from livechat_support import livechat_config

from omnilink import Hub, PostgresStore
from omnilink_livechat import _plugin as livechat_plugin


async def main(dsn: str, notify_channel: str, dispatch: bool) -> None:
    config = livechat_config(notify_dsn=dsn, notify_channel=notify_channel)
    hub = Hub(
        store=PostgresStore(dsn, max_size=4),
        channels={"livechat": config},
        plugins=[livechat_plugin],
        load_entry_points=False,
        dispatch=dispatch,
    )
    async with hub:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(
            uvicorn.Config(
                hub.asgi_app(), ws="auto", lifespan="off", log_level="warning", timeout_graceful_shutdown=2
            )
        )
        print(sock.getsockname()[1], flush=True)
        await server.serve([sock])


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3] == "1")
