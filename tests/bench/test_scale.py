"""``python -m bench scale``: its steps on tiny inputs, and how targets are judged."""

from pathlib import Path

from bench.scale import _table, big_state, restore, targets, write_keys


def test_keys_are_each_written_once(tmp_path: Path):
    path = tmp_path / "keys.jsonl"
    write_keys(path, 1000)
    lines = path.read_text().splitlines()
    assert len(lines) == 1000 and len(set(lines)) == 1000
    assert lines[1] != '{"key":"k000000001","value":1}'  # (scattered, not in order)


def test_restore_replays_every_record_through_the_worker_restore():
    r = restore(3000, chunk=1000)
    assert r["records"] == r["restored_metric"] == 3000
    assert r["store_entries_estimate"] > 0 and r["records_per_s"] > 0


def test_big_state_runs_the_cli_in_a_child(tmp_path: Path):
    r = big_state(500, tmp_path, keep=False)
    assert r["keys"] == 500 and r["peak_rss_mb"] > 0
    assert not (tmp_path / "keys-500.jsonl").exists()


def test_targets_say_met_or_not():
    results = [
        {"step": "input", "events": 10, "peak_rss_mb": 200, "wall_s": 1.0, "cpu_s": 1.0},
        {"step": "input", "events": 100, "peak_rss_mb": 320, "wall_s": 9.0, "cpu_s": 9.0},
        {
            "step": "state",
            "keys": 5,
            "peak_rss_mb": 900,
            "wall_s": 1,
            "cpu_s": 1,
            "events_per_s": 5,
        },
        {"step": "restore", "records": 5, "peak_rss_mb": 1, "seconds": 1, "records_per_s": 299_999},
    ]
    assert targets(results) == [
        "RSS of 100 events / 10: 1.60x (target <= 1.5x: NOT met)",
        "RSS at 5 keys: 900 MB (target < 1024: met)",
        "restore: 299,999 records/s (target >= 300,000: NOT met)",
    ]
    assert _table(results).count("\n") == 5
