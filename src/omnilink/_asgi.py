"""The Hub's ASGI app: every channel's webhook routes and extra apps under one mount."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from ._channel import ASGIApp, WebhookRequest

if TYPE_CHECKING:
    from ._hub import Hub

WEBHOOK_METHODS = ["GET", "POST", "PUT", "HEAD"]


def build_app(hub: Hub) -> ASGIApp:
    async def webhook(request: Request) -> Response:
        channel = request.path_params["channel"]
        sub = request.path_params.get("path", "")
        body = await request.body()
        answer = await hub.handle_webhook(
            channel,
            WebhookRequest.build(
                request.method, str(request.url), request.headers.items(), body, path=f"/{sub}" if sub else ""
            ),
        )
        return Response(
            answer.body,
            status_code=answer.status,
            media_type=answer.content_type,
            headers=dict(answer.headers),
        )

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes: list[Route | Mount] = [
        Route("/healthz", healthz),
        Route("/webhooks/{channel}", webhook, methods=WEBHOOK_METHODS),
        Route("/webhooks/{channel}/{path:path}", webhook, methods=WEBHOOK_METHODS),
    ]
    for name, channel in hub.channels.items():
        app = channel.asgi_app()
        if app is not None:
            routes.append(Mount(f"/channels/{name}", app=app))
    return Starlette(routes=routes)
