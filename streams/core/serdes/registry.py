"""Schema registries: a Confluent-compatible HTTP client and an in-memory stand-in.

Both implement :class:`SchemaRegistry`: ``register(subject, schema) -> id``,
``get_schema(id) -> schema`` and ``latest(subject) -> RegisteredSchema``. Schemas are JSON
values (an Avro record is a ``dict``, a primitive like ``"long"`` a ``str``); a ``str`` given
to ``register`` is read as JSON text, or as a bare primitive name when it is not JSON.

>>> reg = InMemoryRegistry()
>>> reg.register("orders-value", {"type": "record", "name": "O", "fields": []})
1
>>> reg.register("orders-key", "string"), reg.get_schema(2), reg.latest("orders-value").version
(2, 'string', 1)

The HTTP client caches id -> schema and (subject, schema) -> id for the life of the process
(ids are immutable in a registry), so the hot path makes no request after the first record:

>>> client = SchemaRegistryClient("http://user:secret@127.0.0.1:8081")
>>> client.url          # credentials moved to ``auth``, never shown
'http://127.0.0.1:8081'
>>> client.close()
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from streams.core.errors import SerializationError

Schema: TypeAlias = dict[str, Any] | list[Any] | str
"""A parsed schema: a JSON object, a JSON array (an Avro union) or a string (a primitive)."""

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """One version of a subject, as returned by :meth:`SchemaRegistry.latest`."""

    subject: str
    id: int
    version: int
    schema: Schema


@runtime_checkable
class SchemaRegistry(Protocol):
    """What the serdes need from a schema registry."""

    def register(self, subject: str, schema: Schema) -> int: ...

    def get_schema(self, schema_id: int) -> Schema: ...

    def latest(self, subject: str) -> RegisteredSchema: ...


def parse_schema_text(schema: Schema) -> Schema:
    """A schema as a JSON value: ``str`` is parsed as JSON text, else read as a primitive name.

    >>> parse_schema_text('{"type": "long"}'), parse_schema_text("long")
    ({'type': 'long'}, 'long')
    """
    if isinstance(schema, str):
        try:
            parsed: Schema = json.loads(schema)
        except ValueError:
            return schema
        return parsed
    return schema


def canonical(schema: Schema) -> str:
    """Compact JSON with sorted keys: the text sent to a registry and the cache key.

    >>> canonical({"type": "record", "name": "T", "fields": []})
    '{"fields":[],"name":"T","type":"record"}'
    """
    return json.dumps(parse_schema_text(schema), sort_keys=True, separators=(",", ":"))


class InMemoryRegistry:
    """A process-local registry with Confluent's id rules, for tests and the embedded broker.

    Ids are global and start at 1; the same schema gets the same id under any subject, and
    registering a schema a subject already has returns the existing id (no new version).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}  # canonical text -> id
        self._schemas: dict[int, Schema] = {}
        self._versions: dict[str, list[int]] = {}  # subject -> ids, version n at [n - 1]

    @property
    def url(self) -> str:
        return "memory://"

    def register(self, subject: str, schema: Schema) -> int:
        text = canonical(schema)
        with self._lock:
            schema_id = self._ids.get(text)
            if schema_id is None:
                schema_id = len(self._schemas) + 1
                self._ids[text] = schema_id
                self._schemas[schema_id] = json.loads(text)
            versions = self._versions.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    def get_schema(self, schema_id: int) -> Schema:
        try:
            return self._schemas[schema_id]
        except KeyError:
            raise SerializationError(
                f"schema registry memory://: unknown schema id {schema_id}"
            ) from None

    def latest(self, subject: str) -> RegisteredSchema:
        versions = self._versions.get(subject)
        if not versions:
            raise SerializationError(f"schema registry memory://: unknown subject '{subject}'")
        schema_id = versions[-1]
        return RegisteredSchema(subject, schema_id, len(versions), self._schemas[schema_id])

    def subjects(self) -> list[str]:
        """Every subject registered so far, sorted."""
        return sorted(self._versions)


class SchemaRegistryClient:
    """A synchronous client for the Confluent Schema Registry REST API (also served by
    Apicurio's ``/apis/ccompat/v7`` and Karapace).

    ``auth`` is anything httpx accepts (``(user, password)`` or an ``httpx.Auth``); credentials
    in the URL are moved into ``auth``. Error messages name the URL without credentials.
    Lookups by id and registrations are cached forever; ``latest`` always asks the registry.
    """

    def __init__(
        self,
        url: str,
        *,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 10,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = "<a URL with credentials>" if parts.password else repr(url)
            raise ValueError(
                f"schema registry URL must be http(s)://host[:port][/path], got {shown}"
            )
        if parts.username is not None or parts.password is not None:
            if auth is None:
                auth = (parts.username or "", parts.password or "")
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            parts = parts._replace(netloc=host + (f":{parts.port}" if parts.port else ""))
        self.url: str = urlunsplit(parts).rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            auth=auth,
            timeout=timeout,
            headers={"Accept": _CONTENT_TYPE + ", application/json", "Content-Type": _CONTENT_TYPE},
            transport=transport or httpx.HTTPTransport(retries=2),
        )
        self._by_id: dict[int, Schema] = {}
        self._ids: dict[tuple[str, str], int] = {}

    def __repr__(self) -> str:
        return f"SchemaRegistryClient({self.url!r})"

    def __enter__(self) -> SchemaRegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def register(self, subject: str, schema: Schema) -> int:
        """Register ``schema`` under ``subject`` (idempotent) and return its global id."""
        text = canonical(schema)
        key = (subject, text)
        schema_id = self._ids.get(key)
        if schema_id is not None:
            return schema_id
        body = self._call(
            "POST",
            f"/subjects/{quote(subject, safe='')}/versions",
            what=f"register a schema under subject '{subject}'",
            json_body={"schema": text},
        )
        schema_id = _int_field(body, "id", self.url, f"subject '{subject}'")
        self._ids[key] = schema_id
        self._by_id.setdefault(schema_id, json.loads(text))
        return schema_id

    def get_schema(self, schema_id: int) -> Schema:
        """The schema with this global id (cached: one request per id per process)."""
        schema = self._by_id.get(schema_id)
        if schema is not None:
            return schema
        body = self._call(
            "GET", f"/schemas/ids/{int(schema_id)}", what=f"get schema id {schema_id}"
        )
        schema = self._schema_field(body, f"schema id {schema_id}")
        self._by_id[schema_id] = schema
        return schema

    def latest(self, subject: str) -> RegisteredSchema:
        """The newest version of ``subject`` (always asks the registry)."""
        where = f"subject '{subject}'"
        body = self._call(
            "GET",
            f"/subjects/{quote(subject, safe='')}/versions/latest",
            what=f"get the latest version of {where}",
        )
        schema = self._schema_field(body, where)
        schema_id = _int_field(body, "id", self.url, where)
        self._by_id.setdefault(schema_id, schema)
        self._ids.setdefault((subject, canonical(schema)), schema_id)
        return RegisteredSchema(
            subject, schema_id, _int_field(body, "version", self.url, where), schema
        )

    def _schema_field(self, body: dict[str, Any], where: str) -> Schema:
        text = body.get("schema")
        if not isinstance(text, str):
            raise SerializationError(f"schema registry {self.url}: {where}: no 'schema' in reply")
        if text[:1] in ("{", "[", '"'):
            try:
                parsed: Schema = json.loads(text)
            except ValueError as e:
                raise SerializationError(
                    f"schema registry {self.url}: {where}: schema is not valid JSON: {e}"
                ) from None
            return parsed
        return text

    def _call(
        self, method: str, path: str, *, what: str, json_body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            resp = self._http.request(method, path, json=json_body)
        except httpx.HTTPError as e:
            # Built from our own credential-free URL, never from the exception's request URL.
            raise SerializationError(
                f"schema registry {self.url}: cannot {what}: {type(e).__name__}: {e}"
            ) from None
        if resp.status_code >= 400:
            detail = resp.text[:300]
            try:
                err = resp.json()
                if isinstance(err, dict) and "message" in err:
                    detail = f"{err['message']} (error_code {err.get('error_code')})"
            except ValueError:
                pass
            raise SerializationError(
                f"schema registry {self.url}: cannot {what}: HTTP {resp.status_code}: {detail}"
            )
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise SerializationError(
                f"schema registry {self.url}: cannot {what}: reply is not a JSON object"
            )
        return body


def _int_field(body: dict[str, Any], field: str, url: str, where: str) -> int:
    value = body.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SerializationError(f"schema registry {url}: {where}: no integer '{field}' in reply")
    return value


__all__ = [
    "InMemoryRegistry",
    "RegisteredSchema",
    "Schema",
    "SchemaRegistry",
    "SchemaRegistryClient",
    "canonical",
    "parse_schema_text",
]
