"""Schema registries: the in-memory one, and the HTTP client against a tiny in-process server
that speaks the three Confluent endpoints (plus ``versions/latest``)."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from streams.core.errors import SerializationError
from streams.core.serdes import (
    AvroSerde,
    InMemoryRegistry,
    RegisteredSchema,
    SchemaRegistry,
    SchemaRegistryClient,
)

T_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "T",
    "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string"}],
}
USER, PASSWORD = "alice", "s3cret-pw"


# -- in-memory ---------------------------------------------------------------------------------


def test_in_memory_follows_confluent_id_rules() -> None:
    reg = InMemoryRegistry()
    assert isinstance(reg, SchemaRegistry)
    assert reg.register("a-value", T_SCHEMA) == 1
    assert reg.register("a-value", json.dumps(T_SCHEMA)) == 1  # same schema, same id
    assert reg.register("b-value", T_SCHEMA) == 1  # ids are global per schema
    assert reg.register("a-value", "long") == 2
    assert reg.latest("a-value") == RegisteredSchema("a-value", 2, 2, "long")
    assert reg.latest("b-value").version == 1
    assert reg.get_schema(1) == T_SCHEMA
    with pytest.raises(SerializationError, match="unknown schema id 3"):
        reg.get_schema(3)
    with pytest.raises(SerializationError, match="unknown subject 'zzz'"):
        reg.latest("zzz")


# -- a fake Confluent registry over HTTP -------------------------------------------------------


class FakeRegistry:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.ids: dict[str, int] = {}
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.require_auth = False


def _handler(state: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if not state.require_auth:
                return True
            token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") == f"Basic {token}":
                return True
            self._reply(401, {"error_code": 401, "message": "Unauthorized"})
            return False

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(("POST", self.path, body))
            state.headers.append(dict(self.headers))
            if not self._authorized():
                return
            parts = self.path.split("/")  # /subjects/{subject}/versions
            if len(parts) != 4 or parts[1] != "subjects" or parts[3] != "versions":
                return self._reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
            if not isinstance(body.get("schema"), str) or body["schema"] == "{}":
                return self._reply(422, {"error_code": 42201, "message": "Invalid schema"})
            subject = unquote(parts[2])
            text = body["schema"]
            schema_id = state.ids.setdefault(text, len(state.ids) + 1)
            state.schemas[schema_id] = text
            versions = state.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            self._reply(200, {"id": schema_id})

        def do_GET(self) -> None:
            state.requests.append(("GET", self.path, None))
            state.headers.append(dict(self.headers))
            if not self._authorized():
                return
            parts = self.path.split("/")
            if self.path.startswith("/schemas/ids/"):
                schema_id = int(parts[3])
                if schema_id not in state.schemas:
                    return self._reply(
                        404, {"error_code": 40403, "message": f"Schema {schema_id} not found"}
                    )
                return self._reply(200, {"schema": state.schemas[schema_id]})
            if len(parts) == 5 and parts[1] == "subjects" and parts[4] == "latest":
                subject = unquote(parts[2])
                if subject not in state.subjects:
                    return self._reply(
                        404, {"error_code": 40401, "message": f"Subject '{subject}' not found."}
                    )
                versions = state.subjects[subject]
                return self._reply(
                    200,
                    {
                        "subject": subject,
                        "version": len(versions),
                        "id": versions[-1],
                        "schema": state.schemas[versions[-1]],
                    },
                )
            self._reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

    return Handler


@pytest.fixture()
def server() -> Iterator[tuple[str, FakeRegistry]]:
    state = FakeRegistry()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture()
def client(server: tuple[str, FakeRegistry]) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient(server[0], timeout=5) as c:
        yield c


def test_register_posts_the_canonical_schema_once(
    server: tuple[str, FakeRegistry], client: SchemaRegistryClient
) -> None:
    _, state = server
    assert isinstance(client, SchemaRegistry)
    assert client.register("orders-value", T_SCHEMA) == 1
    assert client.register("orders-value", dict(reversed(list(T_SCHEMA.items())))) == 1
    assert client.register("orders-value", json.dumps(T_SCHEMA, indent=2)) == 1
    assert state.requests == [
        (
            "POST",
            "/subjects/orders-value/versions",
            {"schema": json.dumps(T_SCHEMA, sort_keys=True, separators=(",", ":"))},
        )
    ]
    assert state.headers[0]["Content-Type"] == "application/vnd.schemaregistry.v1+json"
    assert client.register("other", "string") == 2
    assert state.requests[-1] == ("POST", "/subjects/other/versions", {"schema": '"string"'})


def test_subjects_are_url_quoted(
    server: tuple[str, FakeRegistry], client: SchemaRegistryClient
) -> None:
    client.register("a/b c", T_SCHEMA)
    assert server[1].requests[0][1] == "/subjects/a%2Fb%20c/versions"
    assert client.latest("a/b c").subject == "a/b c"


def test_get_schema_is_cached(server: tuple[str, FakeRegistry]) -> None:
    url, state = server
    with SchemaRegistryClient(url) as writer:
        schema_id = writer.register("s", T_SCHEMA)
    with SchemaRegistryClient(url) as reader:
        state.requests.clear()
        assert reader.get_schema(schema_id) == T_SCHEMA
        assert reader.get_schema(schema_id) == T_SCHEMA
        assert state.requests == [("GET", f"/schemas/ids/{schema_id}", None)]


def test_register_fills_the_id_cache(
    server: tuple[str, FakeRegistry], client: SchemaRegistryClient
) -> None:
    schema_id = client.register("s", T_SCHEMA)
    assert client.get_schema(schema_id) == T_SCHEMA
    assert [r[0] for r in server[1].requests] == ["POST"]


def test_latest_always_asks(server: tuple[str, FakeRegistry], client: SchemaRegistryClient) -> None:
    client.register("s", T_SCHEMA)
    assert client.latest("s") == RegisteredSchema("s", 1, 1, T_SCHEMA)
    client.register("s", "long")
    assert client.latest("s") == RegisteredSchema("s", 2, 2, "long")
    assert [r[0] for r in server[1].requests] == ["POST", "GET", "POST", "GET"]


def test_avro_serde_over_http_makes_one_request_per_side(
    server: tuple[str, FakeRegistry],
) -> None:
    url, state = server
    with SchemaRegistryClient(url) as w, SchemaRegistryClient(url) as r:
        writer = AvroSerde(w, schema=T_SCHEMA, topic="t")
        reader = AvroSerde(r)
        for i in range(50):
            data = writer.serialize({"a": i, "b": "x"})
            assert data is not None and data[:5] == b"\x00\x00\x00\x00\x01"
            assert reader.deserialize(data) == {"a": i, "b": "x"}
    assert [(m, p) for m, p, _ in state.requests] == [
        ("POST", "/subjects/t-value/versions"),
        ("GET", "/schemas/ids/1"),
    ]


def test_unknown_id_names_registry_and_id(
    server: tuple[str, FakeRegistry], client: SchemaRegistryClient
) -> None:
    with pytest.raises(SerializationError) as info:
        client.get_schema(42)
    msg = str(info.value)
    assert server[0] in msg and "schema id 42" in msg and "HTTP 404" in msg
    assert "Schema 42 not found (error_code 40403)" in msg
    with pytest.raises(SerializationError, match="schema id 42"):
        AvroSerde(client).deserialize(b"\x00\x00\x00\x00\x2a\x00")


def test_unknown_subject_and_rejected_schema(client: SchemaRegistryClient) -> None:
    with pytest.raises(SerializationError, match=r"subject 'nope'.*HTTP 404.*40401"):
        client.latest("nope")
    with pytest.raises(SerializationError, match=r"subject 'bad'.*HTTP 422.*Invalid schema"):
        client.register("bad", {})


def test_credentials_in_url_become_basic_auth_and_never_appear_in_errors(
    server: tuple[str, FakeRegistry],
) -> None:
    url, state = server
    state.require_auth = True
    authed = url.replace("http://", f"http://{USER}:{PASSWORD}@")
    with SchemaRegistryClient(authed) as c:
        assert c.url == url
        assert PASSWORD not in repr(c)
        assert c.register("s", T_SCHEMA) == 1
        with pytest.raises(SerializationError) as info:
            c.get_schema(9)
        assert PASSWORD not in str(info.value) and USER not in str(info.value)
    with SchemaRegistryClient(url, auth=(USER, "wrong")) as c:
        with pytest.raises(SerializationError, match="HTTP 401") as info:
            c.get_schema(1)
        assert "wrong" not in str(info.value)


def test_unreachable_registry() -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://u:topsecret@127.0.0.1:{port}"
    with SchemaRegistryClient(url, timeout=2) as c, pytest.raises(SerializationError) as info:
        c.get_schema(1)
    msg = str(info.value)
    assert f"http://127.0.0.1:{port}" in msg and "ConnectError" in msg
    assert "topsecret" not in msg


def test_bad_url() -> None:
    with pytest.raises(ValueError, match="http"):
        SchemaRegistryClient("localhost:8081")
    with pytest.raises(ValueError) as info:
        SchemaRegistryClient("ftp://u:pw123@host")
    assert "pw123" not in str(info.value)
