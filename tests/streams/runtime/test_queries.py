"""Interactive queries on the embedded broker: local reads, forwarding between two workers'
HTTP servers, windowed range queries, key decoding and errors."""

import asyncio
import contextlib
from types import SimpleNamespace

import aiohttp
import pytest

import streams as st
from streams import agg, windows
from streams.core.partitioner import partition_for
from streams.runtime.assignor import CopartitionedAssignor
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.http import parse_address
from streams.runtime.queries import FORWARDED_HEADER, QueryError

KEYS = [f"k{i}" for i in range(12)]


def topology():
    t = st.Topology("iq")
    src = t.source("in", timestamp="ts")
    src.count("counts").to("out", value=st.serde.INT)
    # int keys
    src.key_by(st.col("n")).count("by-n").to("out-n", key=st.serde.JSON, value=st.serde.INT)
    # grace keeps every window in the store
    per_10ms = src.window("per-10ms", windows.tumbling(ms=10, grace=1_000))
    per_10ms.aggregate(n=agg.count()).to("win")
    return t


def fill(b):
    for topic in ("in", "out", "out-n", "win"):
        b.create_topic(topic, 4)
    expected = {}
    for i in range(120):
        k = KEYS[i % len(KEYS)]
        b.append(
            "in", partition_for(k.encode(), 4), k.encode(), b'{"n": %d, "ts": %d}' % (i % 3, i), i
        )
        expected[k] = expected.get(k, 0) + 1
    return expected


@contextlib.asynccontextmanager
async def two_workers(tmp_path):
    b = EmbeddedBroker()
    expected = fill(b)
    ws = [
        st.Worker(
            topology(),
            b,
            st.Config(
                state_dir=str(tmp_path / f"w{i}"), commit_interval_ms=20, http_address="127.0.0.1:0"
            ),
        )
        for i in range(2)
    ]
    runs = [asyncio.create_task(w.run()) for w in ws]
    try:
        for _ in range(300):  # both joined, the 4 partitions split 2 + 2, everything processed
            await asyncio.sleep(0.02)
            if (
                all(len({t.partition for t in w.slots}) == 2 for w in ws)
                and sum(w.processed for w in ws) >= 240  # in + repartition
                and all(w.owner_of(p) for w in ws for p in range(4))
            ):
                break
        else:
            raise AssertionError("workers did not settle")
        async with aiohttp.ClientSession() as http:
            yield ws, http, expected
    finally:
        for w in ws:
            w.stop()
        await asyncio.gather(*runs)


async def get(http, endpoint, path, **kw):
    async with http.get(f"http://{endpoint}{path}", **kw) as r:
        return r.status, await r.json()


async def test_every_key_is_answered_through_either_worker(tmp_path):
    async with two_workers(tmp_path) as (ws, http, expected):
        a, c = ws
        assert a.endpoint != c.endpoint and a.endpoint.startswith("127.0.0.1:")
        owners = {}
        for k, n in expected.items():
            store = a.store("counts")
            owner = a if store.is_local(k) else c
            owners[k] = owner
            assert store.owner(k) == owner.endpoint == c.store("counts").owner(k)
            for via in ws:
                status, body = await get(http, via.endpoint, f"/stores/counts/{k}")
                assert status == 200, body
                assert body["value"] == n and body["key"] == k
                assert body["served_by"] == owner.endpoint  # forwarded when not local
        assert {o.endpoint for o in owners.values()} == {a.endpoint, c.endpoint}


async def test_python_api_reads_locally_and_query_forwards(tmp_path):
    async with two_workers(tmp_path) as (ws, _http, expected):
        a, c = ws
        store = a.store("counts")
        local = next(k for k in expected if store.is_local(k))
        remote = next(k for k in expected if not store.is_local(k))
        assert store.get(local) == expected[local]
        missing = next(f"x{i}" for i in range(100) if store.is_local(f"x{i}"))
        assert store.get(missing, "dflt") == "dflt"
        with pytest.raises(QueryError) as e:
            store.get(remote)
        assert e.value.status == 503 and e.value.body["owner"] == c.endpoint
        status, body = await store.query(remote)
        assert (status, body["value"], body["served_by"]) == (200, expected[remote], c.endpoint)
        assert c.store("counts").get(remote) == expected[remote]


async def test_windowed_range_queries(tmp_path):
    async with two_workers(tmp_path) as (ws, http, _expected):
        a, c = ws
        k = "k1"  # timestamps 1, 13, 25, ..., 109: one record in each 10 ms window it touches
        status, body = await get(http, a.endpoint, f"/stores/per-10ms/{k}?from=10&to=30")
        assert status == 200, body
        assert [(w["start"], w["end"], w["value"]["n"]) for w in body["windows"]] == [
            (10, 20, 1),
            (20, 30, 1),
            (30, 40, 1),
        ]
        status, body = await get(http, c.endpoint, f"/stores/per-10ms/{k}")
        assert status == 200 and len(body["windows"]) == 10  # no bounds: every window
        owner = a if a.store("per-10ms").is_local(k) else c
        assert [w["start"] for w in owner.store("per-10ms").fetch(k, 0, 15)] == [0, 10]
        status, body = await get(http, a.endpoint, f"/stores/per-10ms/{k}?from=soon")
        assert status == 400 and "from" in body["error"]


async def test_non_string_keys_use_json(tmp_path):
    async with two_workers(tmp_path) as (ws, http, _expected):
        a = ws[0]
        for via in ws:  # 120 records, n = i % 3: 40 each
            status, body = await get(http, via.endpoint, "/stores/by-n/2?key_format=json")
            assert (status, body["key"], body["value"]) == (200, 2, 40)
            status, body = await get(http, via.endpoint, "/stores/by-n/2")  # the string "2"
            assert status == 404 and body["error"] == "key not found"
        status, body = await a.store("by-n").query(1)
        assert (status, body["value"]) == (200, 40)


async def test_errors_are_clear_json(tmp_path):
    async with two_workers(tmp_path) as (ws, http, expected):
        a, c = ws
        status, body = await get(http, a.endpoint, "/stores/nope/k1")
        assert status == 404 and body["error"] == "unknown store 'nope'"
        assert "counts" in body["stores"]
        status, body = await get(http, a.endpoint, "/stores/counts/missing-key")
        assert status == 404 and body["error"] == "key not found"
        status, body = await get(http, a.endpoint, "/nothing/here")
        assert status == 404 and "error" in body
        status, body = await get(http, a.endpoint, "/stores/counts/k1?key_format=xml")
        assert status == 400 and "key_format" in body["error"]
        # a forwarded query is never forwarded again: the non-owner says who owns it
        remote = next(k for k in expected if not a.store("counts").is_local(k))
        status, body = await get(
            http, a.endpoint, f"/stores/counts/{remote}", headers={FORWARDED_HEADER: "1"}
        )
        assert status == 503 and body["owner"] == c.endpoint
        status, body = await get(http, a.endpoint, "/stores")
        assert {s["store"] for s in body["stores"]} >= {"counts", "by-n", "per-10ms"}
        status, body = await get(http, a.endpoint, "/health")
        assert status == 200 and body["ready"] and body["endpoint"] == a.endpoint


async def test_forwarding_to_a_dead_owner_is_a_502(tmp_path):
    async with two_workers(tmp_path) as (ws, http, expected):
        a, c = ws
        remote = next(k for k in expected if not a.store("counts").is_local(k))
        assert c.http is not None
        await c.http.close()  # the owner's server is gone (its partitions not yet moved)
        status, body = await get(http, a.endpoint, f"/stores/counts/{remote}")
        assert status == 502 and body["owner"] == c.endpoint and "failed" in body["error"]


def test_worker_without_http_still_answers_local_queries(tmp_path):
    b = EmbeddedBroker()
    expected = fill(b)

    async def go():
        w = st.Worker(topology(), b, st.Config(state_dir=str(tmp_path), commit_interval_ms=20))
        run = asyncio.create_task(w.run())
        for _ in range(300):
            await asyncio.sleep(0.02)
            if w.processed >= 240:
                break
        try:
            assert w.http is None and w.endpoint is None
            assert all(w.store("counts").get(k) == n for k, n in expected.items())
            with pytest.raises(QueryError, match="unknown store"):
                w.store("nope")
        finally:
            w.stop()
            await run

    asyncio.run(go())


def test_the_assignor_tells_every_member_who_owns_each_partition():
    a = CopartitionedAssignor.for_consumer(0, "h-a:1")
    c = CopartitionedAssignor.for_consumer(1, "h-c:2")
    cluster = SimpleNamespace(partitions_for_topic=lambda t: {0, 1, 2, 3})
    members = {
        "m-a": SimpleNamespace(subscription=["in"], user_data=a.metadata(["in"]).user_data),
        "m-c": SimpleNamespace(subscription=["in"], user_data=c.metadata(["in"]).user_data),
    }
    plan = a.assign(cluster, members)
    a.on_assignment(plan["m-a"])
    c.on_assignment(plan["m-c"])
    want = {0: "h-a:1", 2: "h-a:1", 1: "h-c:2", 3: "h-c:2"}
    assert a.endpoints == want and c.endpoints == want
    assert c.standby == {0, 2}  # standby dealing is unchanged
    # a member of an older version (no endpoint) is simply not in the map
    old = SimpleNamespace(subscription=["in"], user_data=b'{"standby_replicas": 0}')
    plan = a.assign(cluster, {"m-a": members["m-a"], "m-b": old})
    a.on_assignment(plan["m-a"])
    assert a.endpoints == {0: "h-a:1", 2: "h-a:1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        (":0", ("127.0.0.1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9", ("::1", 9)),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("bad", ["8080", "host:port", "h:70000"])
def test_parse_address_rejects(bad):
    with pytest.raises(st.StreamsError):
        parse_address(bad)
