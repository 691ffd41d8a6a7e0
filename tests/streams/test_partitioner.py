import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.partitioner import Partitioner, murmur2, partition_for

# Vectors from Apache Kafka's UtilsTest.testMurmur2
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), KAFKA_VECTORS.items())
def test_murmur2_matches_kafka(data, expected):
    assert murmur2(data) == expected


@given(st.binary(max_size=64), st.integers(1, 64))
def test_partition_in_range_and_cached_equal(data, n):
    p = partition_for(data, n)
    assert 0 <= p < n
    part = Partitioner(cache_size=4)
    assert part.partition(data, n) == p
    assert part.partition(data, n) == p  # cached path


def test_cache_resets_when_full():
    part = Partitioner(cache_size=2)
    keys = [b"a", b"b", b"c", b"d"]
    assert [part.partition(k, 7) for k in keys] == [partition_for(k, 7) for k in keys]
    assert len(part._cache) <= 2
