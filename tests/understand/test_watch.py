"""watch: follow a file that grows between polls; findings fire once, as lines arrive."""

from __future__ import annotations

from pathlib import Path

from losslens.watch import LogFollower, sparkline, status_rows
from tests.understand._runs import mmdet_lines


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
