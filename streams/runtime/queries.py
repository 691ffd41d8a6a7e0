"""Interactive queries: read a store's value for a key, on whichever worker holds it.

A key lives in one task: the task of the store's sub-topology for the key's partition. The
partition is computed the way the key reached the store: Kafka's default partitioner over the
key bytes (the source's key serde) for a user topic, over the key's canonical bytes for a
repartition topic (see :mod:`operators.sink`). Assumption: producers of user topics partition
with Kafka's default partitioner (as every sink here does).

Which worker owns partition ``p`` comes from the consumer group: members advertise their HTTP
endpoint in the assignor's subscription user data, and the group leader sends every member the
map ``endpoint -> partition numbers`` with its assignment (:mod:`streams.runtime.assignor`).
A query for a key owned elsewhere is forwarded once over HTTP (``X-Streams-Forwarded``); a worker
that receives a forwarded query for a key it does not hold (the map changed meanwhile) answers
503 rather than forwarding again.

Keys in URLs are text: decoded with the store's key serde (``str`` keys as they are, ``json``
keys as JSON, ``int`` keys as digits); stores keyed with the internal ``KEY`` serde take the
source topic's key serde, else a plain string. ``?key_format=json`` (or ``string``) overrides:
JSON arrays become tuples.

>>> decode_text_key('["card", 7]', "json"), decode_text_key("c1", "string")
(('card', 7), 'c1')
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import msgspec

from operators.aggregate import AggregateProcessor
from operators.sink import canonical_key_bytes
from operators.windowed import window_functions
from state.encoding import INT64_MAX, INT64_MIN
from state.session import SessionStore
from state.window import WindowStore
from streams.compiler.compile import Input, StoreInfo, SubTopology
from streams.core.errors import StreamsError
from streams.core.partitioner import partition_for
from streams.core.serde import KEY, Serde
from streams.plan import nodes as plan
from streams.plan.windows import Hopping, Session, Tumbling
from streams.runtime.task import TaskId

if TYPE_CHECKING:
    from streams.runtime.worker import Worker

FORWARDED_HEADER = "X-Streams-Forwarded"
_MISSING = object()


class QueryError(StreamsError):
    """A query that cannot be answered: ``status`` is its HTTP status, ``body`` the JSON body."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": message, **details}


# -- keys -----------------------------------------------------------------------------------------
def _hashable(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_hashable(v) for v in x)
    return x


def decode_text_key(text: str, key_format: str) -> Any:
    """A URL key as ``"string"`` (as is) or ``"json"`` (arrays become tuples)."""
    if key_format == "string":
        return text
    if key_format == "json":
        try:
            return _hashable(msgspec.json.decode(text.encode()))
        except msgspec.DecodeError as e:
            raise QueryError(400, f"key {text!r} is not valid JSON: {e}") from None
    raise QueryError(400, f"key_format must be 'string' or 'json', not {key_format!r}")


def _decode_with(text: str, serde: Serde) -> Any:
    if serde.name == "int":
        try:
            return int(text)
        except ValueError:
            raise QueryError(400, f"key {text!r} is not an integer (int key serde)") from None
    try:
        return _hashable(serde.deserialize(text.encode()))
    except Exception as e:
        raise QueryError(
            400, f"key {text!r} does not decode with the {serde.name} key serde: {e}"
        ) from None


# -- stores ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreRef:
    """Where a store lives and how its values are presented."""

    name: str
    kind: str  # "kv" | "window" | "session" | "global"
    key_serdes: tuple[Serde, ...]  # decoding URL keys: the first text-like one wins
    sub: SubTopology | None = None
    feed: Input | None = None  # the input topic the store's keys arrive on
    present: Callable[[Any], Any] | None = None
    window: Callable[[Any, int, int], Any] | None = None
    window_size_ms: int = 0

    def decode_key(self, text: str, key_format: str | None) -> Any:
        if key_format is not None:
            return decode_text_key(text, key_format)
        for serde in self.key_serdes:
            if serde.name not in ("key", "pickle"):
                return _decode_with(text, serde)
        return text


def locate(worker: Worker, name: str) -> StoreRef:
    """The store ``name`` of the worker's topology (:class:`QueryError` 404 if there is none)."""
    g = worker.global_stores.get(name)
    if g is not None:
        return StoreRef(name, "global", (g.node.key_serde,))
    for sub in worker.plan.subtopologies:
        for info in sub.stores:
            if info.spec.name == name:
                return _store_ref(worker, sub, info)
    known = sorted(
        [s.spec.name for sub in worker.plan.subtopologies for s in sub.stores]
        + list(worker.global_stores)
    )
    raise QueryError(404, f"unknown store '{name}'", store=name, stores=known)


def _store_ref(worker: Worker, sub: SubTopology, info: StoreInfo) -> StoreRef:
    feed = _feeding_input(worker, sub, info.step)
    serdes = [info.spec.key_serde]
    if feed is not None and not feed.internal:
        serdes.append(feed.key_serde)
    node = info.node
    base = StoreRef(info.spec.name, info.spec.kind, tuple(serdes), sub, feed)
    if isinstance(node, plan.Aggregate):
        return _replace(base, present=AggregateProcessor.presenter(node))
    if isinstance(node, plan.WindowedAggregate):
        spec = node.window
        if not isinstance(spec, Tumbling | Hopping | Session):
            return _replace(base, kind="unqueryable")
        size = spec.size_ms if isinstance(spec, Tumbling | Hopping) else 0
        return _replace(base, window=window_functions(node)[3], window_size_ms=size)
    if info.spec.kind != "kv":
        return _replace(base, kind="unqueryable")  # join buffers: records, not results
    return base


def _replace(ref: StoreRef, **changes: Any) -> StoreRef:
    return StoreRef(**{**ref.__dict__, **changes})


def _feeding_input(worker: Worker, sub: SubTopology, step: str) -> Input | None:
    """The input topic upstream of ``step`` in its sub-topology (its keys' partitioning)."""
    by_step = {inp.step: inp for inp in sub.inputs.values()}
    todo, seen = [step], set()
    while todo:
        s = todo.pop(0)
        if s in by_step:
            return by_step[s]
        if s in seen:
            continue
        seen.add(s)
        todo.extend(worker.plan.logical.node(s).parents)
    return next(iter(sub.inputs.values()), None)


def partition_of(worker: Worker, ref: StoreRef, key: Any) -> int:
    """The partition (task) number holding ``key`` in store ``ref``."""
    if ref.feed is None:
        return 0
    n = worker._counts.get(ref.feed.topic)
    if n is None:
        raise QueryError(503, "the worker has not started yet", store=ref.name)
    try:
        kb = canonical_key_bytes(key) if ref.feed.internal else ref.feed.key_serde.serialize(key)
    except Exception as e:
        raise QueryError(400, f"key {key!r} does not serialize: {e}", store=ref.name) from None
    if kb is None or n == 1:
        return 0
    return partition_for(kb, n)


def read_local(
    worker: Worker, ref: StoreRef, key: Any, t_from: int | None, t_to: int | None
) -> dict[str, Any]:
    """Answer from this worker's own task (:class:`QueryError` when it does not hold the key)."""
    if ref.kind == "global":
        value = worker.global_stores[ref.name].get(key)
        if value is None:
            raise QueryError(404, "key not found", store=ref.name, key=key)
        return {"store": ref.name, "key": key, "value": value}
    if ref.kind == "unqueryable":
        raise QueryError(400, f"store '{ref.name}' holds buffered records; it is not queryable")
    assert ref.sub is not None
    p = partition_of(worker, ref, key)
    slot = worker.slots.get(TaskId(ref.sub.id, p))
    where = {"store": ref.name, "key": key, "partition": p}
    if slot is None or slot.task.stores is None:
        owner = worker.owner_of(p)
        why = "another worker holds it" if owner else "no owner known yet (rebalancing?)"
        raise QueryError(503, f"partition not hosted by this worker; {why}", owner=owner, **where)
    if not slot.ready.is_set():
        raise QueryError(503, "partition is restoring; retry later", **where)
    stores = slot.task.stores
    if ref.kind == "kv":
        value = stores.kv(ref.name).get(key, _MISSING)
        if value is _MISSING:
            raise QueryError(404, "key not found", **where)
        return {**where, "value": ref.present(value) if ref.present is not None else value}
    lo = INT64_MIN if t_from is None else t_from
    hi = INT64_MAX if t_to is None else t_to
    assert ref.window is not None
    kb = KEY.serialize(key)  # windowed aggregates key their stores with KEY
    assert kb is not None
    store = stores.raw(ref.name)
    windows = []
    if isinstance(store, WindowStore):
        for start, raw in store.fetch(kb, lo, hi):
            end = start + ref.window_size_ms
            windows.append(
                {"start": start, "end": end, "value": _window_value(ref, raw, start, end)}
            )
    elif isinstance(store, SessionStore):
        for start, end, raw in store.find_sessions(kb, lo, hi):
            windows.append(
                {"start": start, "end": end, "value": _window_value(ref, raw, start, end)}
            )
    return {**where, "windows": windows}


def _window_value(ref: StoreRef, raw: bytes, start: int, end: int) -> Any:
    """What the windowed aggregation emits for this window (with ``window_start``/``_end``)."""
    assert ref.window is not None
    return ref.window(pickle.loads(raw), start, end)


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise QueryError(
            400, f"'{name}' must be an integer (epoch milliseconds), not {raw!r}"
        ) from None


def to_json(body: Any) -> bytes:
    return msgspec.json.encode(body, enc_hook=repr)


# -- answering (local or forwarded) ---------------------------------------------------------------
class Queries:
    """A worker's query front: answers locally or forwards to the owner over HTTP."""

    def __init__(self, worker: Worker, timeout_s: float = 10.0) -> None:
        self.worker = worker
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def answer(
        self, store: str, key_text: str, params: Mapping[str, str], *, forwarded: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """``(HTTP status, JSON body)`` for ``GET /stores/{store}/{key_text}?params``."""
        w = self.worker
        try:
            ref = locate(w, store)
            key = ref.decode_key(key_text, params.get("key_format"))
            t_from, t_to = _int_param(params, "from"), _int_param(params, "to")
            return 200, self._served(read_local(w, ref, key, t_from, t_to))
        except QueryError as e:
            owner = e.body.get("owner")
            if e.status == 503 and owner and owner != w.endpoint and not forwarded:
                return await self._forward(owner, store, key_text, params)
            return e.status, self._served(e.body)

    def _served(self, body: dict[str, Any]) -> dict[str, Any]:
        body["served_by"] = self.worker.endpoint
        return body

    async def _forward(
        self, owner: str, store: str, key_text: str, params: Mapping[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        url = f"http://{owner}/stores/{quote(store, safe='')}/{quote(key_text, safe='')}"
        try:
            async with self._session.get(
                url, params=dict(params), headers={FORWARDED_HEADER: "1"}
            ) as resp:
                body = await resp.json(content_type=None)
                return resp.status, body if isinstance(body, dict) else {"value": body}
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            return 502, {
                "error": f"forwarding to the owner {owner} failed: {type(e).__name__}: {e}",
                "store": store,
                "owner": owner,
                "served_by": self.worker.endpoint,
            }

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class StoreQuery:
    """``worker.store(name)``: read one store by key.

    :meth:`get` and :meth:`fetch` read this worker's own tasks (a key held by another worker
    raises :class:`QueryError`, whose ``body["owner"]`` names that worker's endpoint);
    :meth:`query` answers for any key, forwarding to its owner over HTTP when needed.
    """

    def __init__(self, worker: Worker, name: str) -> None:
        self.worker = worker
        self.ref = locate(worker, name)
        self.name = name

    def partition(self, key: Any) -> int:
        return partition_of(self.worker, self.ref, key)

    def owner(self, key: Any) -> str | None:
        """The HTTP endpoint of the worker holding ``key`` (None: unknown, or no endpoints)."""
        return self.worker.owner_of(self.partition(key))

    def is_local(self, key: Any) -> bool:
        if self.ref.kind == "global":
            return True
        assert self.ref.sub is not None
        return TaskId(self.ref.sub.id, self.partition(key)) in self.worker.slots

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key`` (key-value stores), from this worker's tasks."""
        if self.ref.kind not in ("kv", "global"):
            raise QueryError(400, f"store '{self.name}' is windowed: use fetch()")
        try:
            return read_local(self.worker, self.ref, key, None, None)["value"]
        except QueryError as e:
            if e.status == 404:
                return default
            raise

    def fetch(
        self, key: Any, from_ms: int | None = None, to_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Windows of ``key`` starting in ``[from_ms, to_ms]`` (window stores), or sessions
        overlapping it (session stores): ``[{"start", "end", "value"}]``."""
        if self.ref.kind in ("kv", "global"):
            raise QueryError(400, f"store '{self.name}' is not windowed: use get()")
        windows: list[dict[str, Any]] = read_local(self.worker, self.ref, key, from_ms, to_ms)[
            "windows"
        ]
        return windows

    async def query(
        self, key: Any, from_ms: int | None = None, to_ms: int | None = None
    ) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` as ``GET /stores/{name}/{key}`` answers it, from any worker."""
        params = {"key_format": "json"}
        if from_ms is not None:
            params["from"] = str(from_ms)
        if to_ms is not None:
            params["to"] = str(to_ms)
        text = msgspec.json.encode(key).decode()
        return await self.worker.queries.answer(self.name, text, params)


__all__ = [
    "FORWARDED_HEADER",
    "Queries",
    "QueryError",
    "StoreQuery",
    "StoreRef",
    "decode_text_key",
    "locate",
    "partition_of",
    "read_local",
    "to_json",
]
