"""The worker's HTTP server (aiohttp): metrics, health and interactive queries.

Off unless ``Config(http_address="HOST:PORT")`` (``streams run --http HOST:PORT``):

* ``GET /metrics``: Prometheus text format (the worker's own registry, see
  :mod:`streams.runtime.metrics`);
* ``GET /health``: 200 when ready (every assigned task restored) and healthy (no failure, no
  stalled partition), else 503; the JSON body says why;
* ``GET /stores``: the queryable stores;
* ``GET /stores/{store}/{key}[?from=MS&to=MS][&key_format=json|string]``: the key's value (or
  windows), answered here or forwarded to the worker that holds the key
  (:mod:`streams.runtime.queries`).

Every response is JSON except ``/metrics``; errors are ``{"error": "..."}`` with a 4xx/5xx status,
also for requests aiohttp's parser rejects before any handler runs (a request line over 8 KB,
bytes that are not HTTP): those are logged as one WARNING line, without a traceback.

>>> parse_address("127.0.0.1:8080"), parse_address(":0"), parse_address("[::1]:9000")
(('127.0.0.1', 8080), ('127.0.0.1', 0), ('::1', 9000))
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server
from prometheus_client import CONTENT_TYPE_LATEST

from streams.runtime.config import parse_address
from streams.runtime.metrics import health
from streams.runtime.queries import FORWARDED_HEADER, to_json

if TYPE_CHECKING:
    from streams.runtime.worker import Worker

log = logging.getLogger("streams.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=to_json(body), content_type="application/json")


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return json_response(e.status, {"error": e.reason, "path": request.path})
    except Exception as e:
        log.exception("HTTP %s failed", request.path)
        return json_response(500, {"error": f"{type(e).__name__}: {e}", "path": request.path})


class _JsonErrorHandler(RequestHandler):
    """aiohttp's connection handler, answering requests its parser rejects (4xx) with a JSON
    error and one WARNING line instead of plain text and an ERROR traceback."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not 400 <= status < 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        why = (message or (str(exc) if exc is not None else "") or HTTPStatus(status).phrase)[:200]
        log.warning("HTTP %d for a request from %s: %s", status, request.remote, why)
        resp = json_response(status, {"error": why})
        resp.force_close()
        return resp


class _JsonErrorServer(Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    """An AppRunner whose connections are :class:`_JsonErrorHandler` s."""

    async def _make_server(self) -> Server:
        s = await super()._make_server()  # (starts the app up)
        return _JsonErrorServer(
            s.request_handler,
            request_factory=s.request_factory,
            handler_cancellation=s.handler_cancellation,
            loop=s._loop,
            **s._kwargs,
        )


class HttpServer:
    """Serves one worker. ``start()`` binds; ``address`` is then the bound ``host:port``."""

    def __init__(self, worker: Worker, address: str) -> None:
        self.worker = worker
        self.host, self.port = parse_address(address)
        self._runner: _Runner | None = None
        app = web.Application(middlewares=[_json_errors])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        app.router.add_get("/stores", self._stores)
        app.router.add_get("/stores/{store}/{key:.+}", self._query)
        self.app = app

    async def start(self) -> str:
        self._runner = _Runner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        bound = self._runner.addresses[0]
        self.port = int(bound[1])
        log.info("HTTP server on %s", self.address)
        return self.address

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def advertised(self) -> str:
        """The address other workers reach this one at."""
        if self.host in ("0.0.0.0", "::", ""):
            return f"{socket.gethostname()}:{self.port}"
        return self.address

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers ---------------------------------------------------------------------------------
    async def _metrics(self, request: web.Request) -> web.Response:
        await self.worker.refresh_metrics()
        return web.Response(
            body=self.worker.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _health(self, request: web.Request) -> web.Response:
        ok, body = await health(self.worker)
        return json_response(200 if ok else 503, body)

    async def _stores(self, request: web.Request) -> web.Response:
        plan = self.worker.plan
        stores = [
            {"store": s.spec.name, "kind": s.spec.kind, "subtopology": sub.id}
            for sub in plan.subtopologies
            for s in sub.stores
        ]
        stores += [{"store": g, "kind": "global"} for g in self.worker.global_stores]
        return json_response(200, {"stores": stores})

    async def _query(self, request: web.Request) -> web.Response:
        status, body = await self.worker.queries.answer(
            request.match_info["store"],
            request.match_info["key"],
            dict(request.query),
            forwarded=FORWARDED_HEADER in request.headers,
        )
        return json_response(status, body)


__all__ = ["HttpServer", "json_response", "parse_address"]
