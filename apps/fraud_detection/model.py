"""The demo's risk model, served over HTTP, and the async client the topology scores with.

The rules flag transactions; a model then scores each alert (``risk``, 0 to 1) before it is
written, as a bank would call its model service. :class:`ModelService` is a small aiohttp
application (``POST /score`` with an alert, answers ``{"risk": ...}``) on 127.0.0.1 and a
random port; :class:`ModelClient` is the ``map_async`` function that calls it. Given no URL,
the client starts a service itself, in its own process and event loop, at its first call (the
test driver, each ``streams run`` worker).

>>> import asyncio
>>> async def demo():
...     async with ModelService() as svc:
...         client = ModelClient(svc.url)
...         scored = await client({"rule": "blocklisted_merchant", "score": 1.0})
...         await client.close()
...         return scored["risk"]
>>> asyncio.run(demo())
0.9
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import msgspec
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

#: how much each rule's alerts are worth before their own score
PRIOR = {
    "blocklisted_merchant": 0.9,
    "impossible_travel": 0.8,
    "card_testing": 0.6,
    "amount_spike": 0.5,
}

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_JSON = {"Content-Type": "application/json"}


def risk(alert: dict[str, Any]) -> float:
    """The model: the rule's prior, raised by how far the alert's score is past its rule's
    threshold (a score of 1 is the threshold)."""
    prior = PRIOR.get(alert.get("rule", ""), 0.3)
    excess = max(float(alert.get("score", 1.0)) - 1.0, 0.0)
    return round(1.0 - (1.0 - prior) * math.exp(-excess), 3)


class ModelService:
    """The model over HTTP on 127.0.0.1 (``port=0``: a free one); ``url`` once started."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.url = ""
        self.requests = 0
        self._runner: web.AppRunner | None = None

    async def _score(self, request: web.Request) -> web.Response:
        self.requests += 1
        alert = _decode(await request.read())
        return web.Response(body=_encode({"risk": risk(alert)}), content_type="application/json")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/score", self._score)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}/score"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ModelService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ModelClient:
    """``await client(alert)`` -> the alert with its ``risk``: the topology's ``map_async``
    function. One HTTP session per event loop (connections kept alive); without ``url``, a
    :class:`ModelService` of its own, started on that loop at the first call."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._session: ClientSession | None = None
        self._service: ModelService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def _open(self) -> tuple[ClientSession, str]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # (a new loop: what was opened on another is unusable)
            self._loop, self._lock = loop, asyncio.Lock()
            self._session = self._service = None
        assert self._lock is not None
        async with self._lock:  # (the first calls all arrive at once: one service, one session)
            url = self.url
            if url is None:
                if self._service is None:
                    self._service = ModelService()
                    await self._service.start()
                url = self._service.url
            if self._session is None:
                self._session = ClientSession(
                    connector=TCPConnector(limit=100), timeout=ClientTimeout(total=10)
                )
            return self._session, url

    async def __call__(self, alert: dict[str, Any]) -> dict[str, Any]:
        session, url = await self._open()
        async with session.post(url, data=_encode(alert), headers=_JSON) as r:
            if r.status != 200:
                raise RuntimeError(f"model service answered {r.status}")
            answer = _decode(await r.read())
        return {**alert, "risk": answer["risk"]}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._service is not None:
            await self._service.close()
            self._service = None

    def __repr__(self) -> str:  # (describe() shows it)
        return f"ModelClient({self.url or 'own service'})"


__all__ = ["PRIOR", "ModelClient", "ModelService", "risk"]
