"""WatermarkTracker: a repartition partition's watermark from its upstream tasks' announcements."""

from streams.runtime.watermarks import IDLE, MIN_WATERMARK, WatermarkTracker

TOPIC = "app-x-repartition"


def tracker():
    return WatermarkTracker({}, [(TOPIC, 0)], start_ms=0)


def test_waits_for_every_upstream_task_then_takes_the_minimum():
    t = tracker()
    t.observe_control(TOPIC, 0, upstream=0, count=2, watermark=500)
    assert t.current(0) == MIN_WATERMARK  # upstream 1 has not spoken
    t.observe_control(TOPIC, 0, upstream=1, count=2, watermark=300)
    assert t.current(0) == 300


def test_an_upstream_announcement_never_moves_its_watermark_back():
    """A task that moved to another worker announces its restored (older) watermark, or IDLE
    before its first record; what was already promised stands."""
    t = tracker()
    t.observe_control(TOPIC, 0, upstream=0, count=2, watermark=900)
    t.observe_control(TOPIC, 0, upstream=1, count=2, watermark=800)
    assert t.current(0) == 800
    t.observe_control(TOPIC, 0, upstream=1, count=2, watermark=240)  # the new owner, restored
    t.observe_control(TOPIC, 0, upstream=0, count=2, watermark=IDLE)  # a new owner, no record yet
    assert t.current(0) == 800
    t.observe_control(TOPIC, 0, upstream=1, count=2, watermark=950)
    assert t.current(0) == 900


def test_idle_upstreams_do_not_hold_the_partition_back():
    t = tracker()
    t.observe_control(TOPIC, 0, upstream=0, count=2, watermark=IDLE)
    t.observe_control(TOPIC, 0, upstream=1, count=2, watermark=700)
    assert t.current(0) == 700
