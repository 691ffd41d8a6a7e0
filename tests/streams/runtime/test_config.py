"""``Config`` checks every field when it is made and names the field in the error."""

import dataclasses
from pathlib import Path

import pytest

import streams as st
from streams.runtime.config import _RULES, Config


@pytest.mark.parametrize(
    ("field", "value", "must"),
    [
        ("commit_interval_ms", "100", "an int >= 1, got '100' (str)"),
        ("commit_interval_ms", 0, "an int >= 1, got 0 (int)"),
        ("max_poll_records", True, "an int >= 1, got True (bool)"),
        ("max_poll_records", 10.0, "an int >= 1, got 10.0 (float)"),
        ("poll_timeout_ms", 0, "an int >= 1, got 0"),
        ("task_queue_batches", None, "an int >= 1, got None (NoneType)"),
        ("num_standby_replicas", -1, "an int >= 0, got -1 (int)"),
        ("state_cache_max_entries", 0, "an int >= 1"),
        ("restore_batch_records", "5", "an int >= 1"),
        ("default_partitions", 0, "an int >= 1"),
        ("stall_timeout_ms", -5, "an int >= 1"),
        ("repartition_purge_interval_ms", 1.5, "an int >= 1"),
        ("startup_timeout_ms", False, "an int >= 1, got False (bool)"),
        ("rocksdb_block_cache_bytes", 0, "an int >= 1, got 0 (int)"),
        ("rocksdb_write_buffer_bytes", "32MB", "an int >= 1, got '32MB' (str)"),
        ("processing_guarantee", "twice", "'at_least_once' or 'exactly_once', got 'twice'"),
        ("state_backend", "rocks", "'rocksdb' or 'memory', got 'rocks' (str)"),
        ("state_dir", 5, "a path (str) or None, got 5 (int)"),
        ("gc_threshold", (1, 2), "a tuple of three ints >= 0"),
        ("gc_threshold", [700, 10, 10], "a tuple of three ints >= 0"),
        ("gc_threshold", (700, -1, 10), "a tuple of three ints >= 0"),
        ("http_address", "localhost", "HOST:PORT (port 0-65535) or None, got 'localhost'"),
        ("http_address", "h:99999", "HOST:PORT"),
        ("http_advertised_address", 8080, "HOST:PORT (port 0-65535) or None, got 8080 (int)"),
    ],
)
def test_a_bad_field_is_an_error_naming_it(field, value, must):
    with pytest.raises(st.StreamsError) as e:
        Config(**{field: value})
    assert str(e.value).startswith(f"config {field} must be ")
    assert must in str(e.value)


def test_good_values_pass():
    c = Config(
        commit_interval_ms=1,
        num_standby_replicas=0,
        gc_threshold=None,
        state_dir=Path("/tmp/x"),
        http_address=":0",
        http_advertised_address="[::1]:9000",
        state_backend="memory",
    )
    assert c.effective_commit_interval_ms == 1


def test_every_field_has_a_rule():
    assert {f.name for f in dataclasses.fields(Config)} == set(_RULES)
