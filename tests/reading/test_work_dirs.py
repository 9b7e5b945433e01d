"""A work dir is one run: its text log, the JSON twin and diagnostics.jsonl, joined by step."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import losslens
from losslens.cli import app
from losslens.run import display_names
from tests._runs import mmdet_lines

STAMP = "20261205_163041"
runner = CliRunner()


def _work_dir(folder: Path, records: int = 12) -> Path:
    """What the reference model writes: <stamp>.log, <stamp>.log.json, diagnostics.jsonl."""
    folder.mkdir(parents=True)
    (folder / f"{STAMP}.log").write_text("".join(mmdet_lines(records)))
    twin = []
    diag = [{"losslens": "diagnostics", "version": 1, "kind": "meta", "log_interval": 10}]
    for k in range(records):
        step = (k + 1) * 10
        epoch, it = (step - 1) // 50 + 1, (step - 1) % 50 + 1
        twin.append({"mode": "train", "epoch": epoch, "iter": it, "lr": 0.02, "loss": 1.0})
        diag.append(
            {
                "losslens": "diagnostics",
                "version": 1,
                "kind": "train",
                "epoch": epoch,
                "iter": it,
                "step": step,
                "loss": 1.0,
                "rpn.num_pos": float(k),
            }
        )
    # one diagnostics record past the text log's end (its step is not in the run)
    diag.append({**diag[-1], "step": records * 10 + 10, "rpn.num_pos": 99.0})
    (folder / f"{STAMP}.log.json").write_text("".join(json.dumps(x) + "\n" for x in twin))
    (folder / "diagnostics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in diag))
    return folder


def test_a_work_dir_is_one_run_with_diagnostics_joined_by_step(tmp_path: Path) -> None:
    folder = _work_dir(tmp_path / "w1")
    (run,) = losslens.load_many(folder)
    assert run.path == str(folder / f"{STAMP}.log") and run.format == "mmdet_text"
    assert run.meta["twin"] == str(folder / f"{STAMP}.log.json")
    assert run.meta["diagnostics"] == str(folder / "diagnostics.jsonl")
    assert run.train["step"].tolist() == list(range(10, 130, 10))
    assert run.train["rpn.num_pos"].tolist() == [float(k) for k in range(12)]
    assert (
        run.train["loss"].tolist() == losslens.load(folder / f"{STAMP}.log").train["loss"].tolist()
    )  # the text log's own columns are its own, not the side file's
    assert run.meta["n_diagnostics_unmatched"] == 1
    assert run.diagnostics is not None and run.diagnostics.train["step"].tolist()[-1] == 130
    assert display_names([run]) == [STAMP]


def test_files_named_one_by_one_are_not_grouped(tmp_path: Path) -> None:
    folder = _work_dir(tmp_path / "w1")
    named = [folder / f"{STAMP}.log", folder / f"{STAMP}.log.json", folder / "diagnostics.jsonl"]
    runs = losslens.load_many(named)
    assert [r.format for r in runs] == ["mmdet_text", "mmdet_json", "losslens_diagnostics"]


def test_two_work_dirs_and_a_lone_diagnostics_file(tmp_path: Path) -> None:
    _work_dir(tmp_path / "w1")
    _work_dir(tmp_path / "w2", records=6)
    lone = tmp_path / "w3"
    lone.mkdir()
    (lone / "diagnostics.jsonl").write_text((tmp_path / "w1" / "diagnostics.jsonl").read_text())
    runs = losslens.load_many(tmp_path)
    assert [Path(r.path).relative_to(tmp_path).as_posix() for r in runs] == [
        f"w1/{STAMP}.log",
        f"w2/{STAMP}.log",
        "w3/diagnostics.jsonl",  # nothing to join it into: a run of its own
    ]
    assert [len(r.train) for r in runs] == [12, 6, 13]
    assert display_names(runs) == [f"w1/{STAMP}", f"w2/{STAMP}", "w3"]


def test_parse_of_a_work_dir_shows_one_run(tmp_path: Path) -> None:
    folder = _work_dir(tmp_path / "w1")
    result = runner.invoke(app, ["parse", str(folder), "-q"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.count(f"── {STAMP} ──") == 1 and "#2" not in out and "── w1 ──" not in out
    assert "rpn.num_pos" in out and "12 training records" in out
