"""watch: follow a file that grows between polls; findings fire once, as lines arrive."""

from __future__ import annotations

from pathlib import Path

import pytest

from losslens.showing.summary import duration_text
from losslens.showing.watch import LogFollower, sparkline, status_rows
from tests._runs import mmdet_lines


def test_follow_growing_log_and_fire_findings_once(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    lines = mmdet_lines(30, nan_from=20)
    log.write_text("".join(lines[:10]))
    follower = LogFollower(log)
    first = follower.poll()
    assert first.new_lines == 10 and first.run is not None and len(first.run.train) == 10
    assert "nonfinite-loss" not in {f.code for f in first.new_findings}
    assert follower.poll().new_lines == 0  # nothing appended
    with log.open("a") as handle:
        handle.write("".join(lines[10:25]))
        handle.write(lines[25][:40])  # half a line: waits for its newline
    second = follower.poll()
    assert second.new_lines == 15 and len(second.run.train) == 25
    assert [f.code for f in second.new_findings if f.severity == "error"] == ["nonfinite-loss"]
    with log.open("a") as handle:
        handle.write(lines[25][40:] + "".join(lines[26:]))
    third = follower.poll()
    assert len(third.run.train) == 30 and "nonfinite-loss" not in {
        f.code for f in third.new_findings
    }


def test_truncated_file_is_read_again(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("".join(mmdet_lines(12)))
    follower = LogFollower(log)
    follower.poll()
    log.write_text("".join(mmdet_lines(3)))
    update = follower.poll()
    assert update.restarted and len(update.run.train) == 3


def test_sparkline_and_status_rows(tmp_path: Path) -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1.0, float("nan"), 1.0]) == "▁!▁"
    log = tmp_path / "train.log"
    log.write_text("".join(mmdet_lines(12)))
    follower = LogFollower(log)
    run = follower.poll().run
    names = [row[0] for row in status_rows(run)]
    assert names[0] == "loss" and "lr" in names and "eta_s" in names


def test_grown_log_is_parsed_from_the_cache_cut_not_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import losslens.reading.read

    log = tmp_path / "train.log"
    lines = mmdet_lines(40)
    log.write_text("".join(lines[:30]))
    parsed_sizes: list[int] = []
    real = losslens.reading.read.parse_bytes_tallied  # every parse, cached or not

    def spy(raw: bytes, *args, **kwargs):  # type: ignore[no-untyped-def]
        parsed_sizes.append(len(raw))
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(losslens.reading.read, "parse_bytes_tallied", spy)
    follower = LogFollower(log)
    assert len(follower.poll().run.train) == 30
    assert parsed_sizes[0] == log.stat().st_size  # the first poll parses the whole file
    parsed_sizes.clear()
    with log.open("a") as handle:
        handle.write("".join(lines[30:]))
    update = follower.poll()
    assert update.new_lines == 10 and len(update.run.train) == 40
    # the second poll parsed from the cut, not the 40 lines again
    assert parsed_sizes and max(parsed_sizes) < log.stat().st_size // 2
    assert (
        update.run.train["loss"].tolist() == losslens.load(log, cache=False).train["loss"].tolist()
    )


def test_a_finding_is_reported_new_once_and_then_updated(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    lines = mmdet_lines(40, nan_from=20)
    log.write_text("".join(lines[:25]))
    follower = LogFollower(log)
    first = follower.poll()
    nonfinite = [f for f in first.new_findings if f.code == "nonfinite-loss"]
    assert len(nonfinite) == 1
    with log.open("a") as handle:
        handle.write("".join(lines[25:]))
    second = follower.poll()
    assert "nonfinite-loss" not in {f.code for f in second.new_findings}
    latest = [f for f in second.findings if f.code == "nonfinite-loss"]
    assert len(latest) == 1 and latest[0].message != nonfinite[0].message  # updated, not repeated
    assert [f.code for f in second.findings].count("nonfinite-loss") == 1


def test_missing_file_is_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    follower = LogFollower(log)
    update = follower.poll()
    assert update.missing and update.run is None and update.new_lines == 0
    log.write_text("")
    empty = follower.poll()
    assert not empty.missing and empty.run is None
    log.write_text("".join(mmdet_lines(5)))
    assert len(follower.poll().run.train) == 5


def test_durations_read_as_minutes_and_hours() -> None:
    assert [duration_text(s) for s in (9.96, 70.889, 119.96, 7380.0, 90000.0)] == [
        "10.0s",
        "1m 10.9s",
        "2m 0.0s",
        "2h 03m",
        "1d 01h",
    ]
    assert duration_text(float("nan")) == "nan"
