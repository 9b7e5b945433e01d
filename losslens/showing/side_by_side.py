"""Side by side: a user's run against a run of the losslens reference detector.

For every loss term both runs log (through the canonical term table, :mod:`losslens.analysis.terms`)
the user's value is divided by ours at matched points of a shared x axis (images seen, or
epochs), and the first point where the two part by more than the reference's own
seed-to-seed spread is found. The spread is measured, never assumed (:data:`SPREAD_METHODS`):

* ``seeds``: the reference work dir holds several runs (``diagnostics.jsonl`` in the work dir
  and one folder down, e.g. ``seed1/``): at each point, :data:`SPREAD_SIGMAS` standard
  deviations of their log-losses.
* ``within-run``: one reference run with at least :data:`losslens.analysis.compare.NOISE_WINDOW`
  records: the robust sigma of its log-loss around a rolling median (the noise model of
  :func:`losslens.analysis.compare.first_divergence`), times sqrt 2 (two independent draws differ by
  that much more than one) and :data:`SPREAD_SIGMAS`. It leaves out seed-to-seed differences
  of the curve itself, so it is a lower bound.
* ``unmeasured``: too few records for either; no parting point is claimed.

Matched points are the logged x values of the sparser run inside the shared range; the other
run is interpolated linearly (on log values) there. Explanations are built from what the
reference logged in ``diagnostics.jsonl`` (positives sampled, per-level RPN losses, proposal
recall) and, when given, a :class:`DataCheck`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from losslens.analysis import compare, terms
from losslens.analysis.axes import images_per_step
from losslens.analysis.numbers import number
from losslens.errors import FormatOptionError, NoLogsFoundError
from losslens.reading.config_dump import flatten_config
from losslens.reading.sources import load
from losslens.run import Run

#: The reference's diagnostics file (see :mod:`losslens.reading.formats.losslens_diagnostics`).
DIAGNOSTICS_NAME = "diagnostics.jsonl"
SPREAD_METHODS = ("seeds", "within-run", "unmeasured")
#: The spread is this many standard deviations (about 95% of seed-to-seed draws).
SPREAD_SIGMAS = 2.0
#: Axes the side-by-side accepts; ``auto`` is images when the user's batch size is known.
SIDE_X_AXES = ("auto", "images", "epoch", "step")
_RPN_LEVELS = ("p2", "p3", "p4", "p5", "p6")


@dataclass(frozen=True)
class DataCheck:
    """What a check of the training data found, as the explanations use it.

    ``gts_without_anchor``: the fraction (0-1) of ground-truth boxes that no anchor overlaps
    with IoU >= ``pos_iou_thr`` (the RPN assigner's positive threshold); ``num_gts``: how many
    boxes were checked.
    """

    gts_without_anchor: float | None = None
    pos_iou_thr: float = 0.7
    num_gts: int | None = None

    def __post_init__(self) -> None:
        fraction = self.gts_without_anchor
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise FormatOptionError(
                f"gts_without_anchor must be a fraction between 0 and 1, got {fraction}"
            )
        if not 0.0 < self.pos_iou_thr <= 1.0:
            raise FormatOptionError(f"pos_iou_thr must be in (0, 1], got {self.pos_iou_thr}")

    @classmethod
    def from_coverage(cls, coverage: Any) -> DataCheck:
        """From the data check's anchor coverage (``reference_model.data.AnchorCoverage``:
        ``gts`` and ``levels`` with ``positive`` counts, and ``pos_iou_thr``): the boxes whose
        best anchor stays below ``pos_iou_thr`` (low-quality matches and unreached) over all."""
        gts = int(coverage.gts)
        positive = sum(int(level.positive) for level in coverage.levels)
        fraction = (gts - positive) / gts if gts else None
        return cls(fraction, float(coverage.pos_iou_thr), gts)


@dataclass(frozen=True)
class TermSide:
    """One shared term: matched points and both curves (values, not logs)."""

    term: str
    logged_as: str  # the user's logged name(s)
    points: pd.DataFrame  # x, theirs, ours, ratio, spread (log units), beyond
    theirs_curve: pd.DataFrame  # x, y
    ours_curve: pd.DataFrame  # x, y, lo, hi (the spread band)
    part_x: float | None  # first matched x where they part beyond the spread
    part_ratio: float | None  # typical theirs/ours from there on
    note: str = ""  # why there are no matched points, when there are none


@dataclass
class SideBySide:
    """What :func:`side_by_side` returns; :meth:`table` is what the CLI and the page show."""

    theirs: str
    ours: str
    x: str
    spread_method: str
    spread_note: str
    n_reference_runs: int
    terms: list[TermSide]
    explanations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: How the reference took the user's settings (``train-reference --like``'s notes).
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per shared term: matched points, ratios, parting point, spread."""
        rows = []
        for t in self.terms:
            p = t.points
            rows.append(
                {
                    "term": t.term,
                    "logged_as": t.logged_as,
                    "points": len(p),
                    "ratio_first": float(p["ratio"].iloc[0]) if len(p) else math.nan,
                    "ratio_median": float(p["ratio"].median()) if len(p) else math.nan,
                    "spread": float(np.exp(p["spread"].median())) if len(p) else math.nan,
                    "part_x": t.part_x,
                    "part_ratio": t.part_ratio,
                    "theirs_last": _last(t.theirs_curve),
                    "ours_last": _last(t.ours_curve),
                    "note": t.note,
                }
            )
        return pd.DataFrame(rows)


def _last(curve: pd.DataFrame) -> float:
    return float(curve["y"].iloc[-1]) if len(curve) else math.nan


def reference_runs(work_dir: Path) -> list[Run]:
    """The reference runs of a work dir: its ``diagnostics.jsonl``, then those one folder down."""
    work_dir = Path(work_dir)
    if work_dir.is_file() and work_dir.name == DIAGNOSTICS_NAME:
        work_dir = work_dir.parent
    files = [work_dir / DIAGNOSTICS_NAME] if (work_dir / DIAGNOSTICS_NAME).is_file() else []
    files += sorted(work_dir.glob(f"*/{DIAGNOSTICS_NAME}"))
    if not files:
        raise NoLogsFoundError(
            f"no {DIAGNOSTICS_NAME} of a reference run here or one folder down; "
            "train one with `losslens train-reference --work-dir DIR`",
            path=str(work_dir),
        )
    return [load(f) for f in files]


def _reference_batch(run: Run) -> int | None:
    """Images per step of a reference run, from its diagnostics meta record."""
    runs = run.meta.get("runs") or [{}]
    batch, world = runs[-1].get("batch_size"), runs[-1].get("world_size", 1)
    return int(batch) * int(world or 1) if batch else None


def _axis(theirs: Run, x: str, batch_size: int | None) -> str:
    if x not in SIDE_X_AXES:
        raise FormatOptionError(f"unknown x axis {x!r}; expected one of: {', '.join(SIDE_X_AXES)}")
    if x != "auto":
        return x
    try:
        images_per_step(theirs, batch_size)
        return "images"
    except FormatOptionError:
        return "epoch"


def shared_terms(theirs: pd.DataFrame, ours: pd.DataFrame) -> list[str]:
    """Canonical loss terms (of the term table) both canonical frames hold, total first."""
    mapping = ours.attrs["columns"]
    shared = [
        c
        for c in terms.loss_columns(theirs)
        if c in ours.columns and mapping[c].term is not None and theirs[c].notna().any()
    ]
    if not shared:
        have = "; ".join(", ".join(terms.loss_columns(f)) or "none" for f in (theirs, ours))
        raise FormatOptionError(
            f"your run and the reference share no loss term (canonical names: {have})"
        )
    return shared


def _log(y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)


@dataclass(frozen=True)
class _Spread:
    method: str
    note: str
    within: float | None  # log units, for within-run


def _measure_spread(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> _Spread:
    if len(series) >= 2:
        return _Spread(
            "seeds",
            f"seed-to-seed spread measured over {len(series)} reference runs: "
            f"{SPREAD_SIGMAS:g} standard deviations of their log-losses at each point",
            None,
        )
    ys = series[0][1] if series else np.array([])
    if len(ys) >= compare.NOISE_WINDOW and (ys > 0).all():
        _smooth, sigma = compare.log_noise(ys)
        return _Spread(
            "within-run",
            "one reference run: spread estimated from its own noise (robust sigma of the "
            f"log-loss around a {compare.NOISE_WINDOW}-record rolling median, x sqrt 2 x "
            f"{SPREAD_SIGMAS:g}); a lower bound of the seed-to-seed spread",
            SPREAD_SIGMAS * math.sqrt(2.0) * sigma,
        )
    return _Spread(
        "unmeasured",
        f"spread not measured: one reference run with fewer than {compare.NOISE_WINDOW} "
        "records; train several seeds or log more often (--log-interval)",
        None,
    )


def _ours_curve(
    series: Sequence[tuple[np.ndarray, np.ndarray]], spread: _Spread
) -> tuple[pd.DataFrame, np.ndarray]:
    """Ours on the first run's x: the geometric mean of the runs, band and spread (log)."""
    ox, oy = series[0]
    logs = np.array([np.interp(ox, xs, _log(ys)) for xs, ys in series if len(xs)])
    with warnings.catch_warnings():  # a point where the runs logged 0 has no log value
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmean(logs, axis=0) if len(logs) else np.array([])
        seeds = SPREAD_SIGMAS * np.nanstd(logs, axis=0, ddof=1) if len(logs) > 1 else None
    if seeds is not None:
        width = seeds
    else:
        width = np.full(len(ox), np.nan if spread.within is None else spread.within)
    y = oy if len(series) == 1 else np.exp(centre)
    frame = pd.DataFrame(
        {"x": ox, "y": y, "lo": np.exp(centre - width), "hi": np.exp(centre + width)}
    )
    return frame, width


def _matched(tx: np.ndarray, ty: np.ndarray, ours: pd.DataFrame, width: np.ndarray) -> pd.DataFrame:
    ox = ours["x"].to_numpy()
    lo, hi = max(tx[0], ox[0]), min(tx[-1], ox[-1])
    mine, other = tx[(tx >= lo) & (tx <= hi)], ox[(ox >= lo) & (ox <= hi)]
    grid = mine if len(mine) <= len(other) else other
    theirs_at = np.exp(np.interp(grid, tx, _log(ty)))
    ours_at = np.exp(np.interp(grid, ox, _log(ours["y"].to_numpy())))
    spread = np.interp(grid, ox, width)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = theirs_at / ours_at
        beyond = np.abs(np.log(ratio)) > spread
    return pd.DataFrame(
        {"x": grid, "theirs": theirs_at, "ours": ours_at, "ratio": ratio, "spread": spread}
    ).assign(beyond=beyond)


def _part(points: pd.DataFrame) -> tuple[float | None, float | None]:
    """First matched point beyond the spread whose next point (if any) is beyond it too."""
    beyond = points["beyond"].to_numpy(dtype=bool)
    for k in range(len(beyond)):
        if beyond[k] and (k + 1 == len(beyond) or beyond[k + 1]):
            later = np.log(points["ratio"].to_numpy()[k:])
            return float(points["x"].iloc[k]), float(np.exp(np.nanmedian(later)))
    return None, None


def _range(xs: np.ndarray) -> str:
    return f"{number(xs[0])}-{number(xs[-1])}" if len(xs) else "none"


def _term_side(
    term: str, theirs_xy: tuple[np.ndarray, np.ndarray], refs_xy: list, logged_as: str, x: str
) -> tuple[TermSide, _Spread]:
    tx, ty = theirs_xy
    spread = _measure_spread(refs_xy)
    ours, width = _ours_curve(refs_xy, spread)
    theirs_curve = pd.DataFrame({"x": tx, "y": ty})
    empty = pd.DataFrame(columns=["x", "theirs", "ours", "ratio", "spread", "beyond"])
    ox = ours["x"].to_numpy()
    if not len(tx) or not len(ox) or tx[0] > ox[-1] or ox[0] > tx[-1]:
        note = f"no shared {x} range: yours {_range(tx)}, ours {_range(ox)}"
        return TermSide(term, logged_as, empty, theirs_curve, ours, None, None, note), spread
    points = _matched(tx, ty, ours, width)
    part_x, part_ratio = _part(points) if spread.method != "unmeasured" else (None, None)
    return TermSide(term, logged_as, points, theirs_curve, ours, part_x, part_ratio), spread


def side_by_side(
    theirs: Run,
    ours_work_dir: Path,
    *,
    x: str = "auto",
    batch_size: int | None = None,
    data_check: DataCheck | None = None,
    notes: Sequence[str] = (),
) -> SideBySide:
    """Compare the user's run ``theirs`` with the reference run(s) in ``ours_work_dir``.

    ``x``: one of :data:`SIDE_X_AXES`; ``batch_size``: the user's images per step where their
    log does not tell it; ``data_check``: what a check of the training data found; ``notes``:
    how the reference took the user's settings (shown with the table).
    """
    refs = reference_runs(Path(ours_work_dir))
    axis = _axis(theirs, x, batch_size)
    f_theirs = terms.canonical_frame(theirs)
    f_refs = [terms.canonical_frame(r) for r in refs]
    wanted = shared_terms(f_theirs, f_refs[0])
    sides: list[TermSide] = []
    spreads: list[_Spread] = []
    for term in wanted:
        theirs_xy = compare.term_series(theirs, f_theirs, term, axis, batch_size)
        refs_xy = [
            compare.term_series(r, f, term, axis, _reference_batch(r))
            for r, f in zip(refs, f_refs, strict=True)
            if term in f.columns
        ]
        logged = ", ".join(f_theirs.attrs["columns"][term].sources)
        side, spread = _term_side(term, theirs_xy, refs_xy, logged, axis)
        sides.append(side)
        spreads.append(spread)
    spread = next((s for s in spreads if s.method != "unmeasured"), spreads[0])
    return SideBySide(
        theirs=theirs.name,
        ours=refs[0].name,
        x=axis,
        spread_method=spread.method,
        spread_note=spread.note,
        n_reference_runs=len(refs),
        terms=sides,
        explanations=explain(sides, refs[0], theirs, axis, data_check),
        warnings=_comparability(theirs, refs[0], wanted) + _identical_seeds(sides, spread),
        notes=list(notes),
    )


#: The term semantics the reference model implements (see ``terms.TERMS[...].normalisation``).
REFERENCE_FAMILY = "mmdet2"


def _comparability(theirs: Run, ref: Run, wanted: Sequence[str]) -> list[str]:
    """Terms whose loss type or normaliser differs from the reference's mmdet 2.x semantics,
    and a smoothing difference (the reference logs means over the log interval, as mmcv)."""
    fam = terms.family(theirs)
    out = []
    for term in wanted:
        yours, ours = terms.comparable_key(term, fam), terms.comparable_key(term, REFERENCE_FAMILY)
        if yours != ours:
            out.append(f"{term} is not on the same scale: yours {yours}; ours {ours}")
    if fam not in ("mmdet1", REFERENCE_FAMILY):
        smoothing = (ref.meta.get("smoothing") or {}).get(wanted[0], "")
        out.append(f"your values were smoothed as: {terms.smoothing_of(theirs)}; ours: {smoothing}")
    return out


def _identical_seeds(sides: Sequence[TermSide], spread: _Spread) -> list[str]:
    if spread.method != "seeds":
        return []
    widths = [w for s in sides for w in (s.ours_curve["hi"] / s.ours_curve["lo"]).to_numpy()]
    if widths and np.nanmax(widths) <= 1.0:
        return ["the reference runs are identical (zero spread): were they trained with --seed?"]
    return []


# --------------------------------------------------------------------------- explanations
_X_WORDS = {"images": "images seen", "epoch": "epoch", "step": "step"}


def config_value(run: Run, key: str) -> str | None:
    """A value of the run's dumped config (dotted key), as written there; None when absent."""
    value = flatten_config(run.meta.get("config")).get(key)
    return None if value in (None, "None", "") else value


def _reference_config_value(ref: Run, key: str) -> str | None:
    """A config value of the reference run, from the mmdet-style ``.log`` its diagnostics name."""
    runs = ref.meta.get("runs") or [{}]
    log = Path(ref.path).parent / str(runs[-1].get("log") or "")
    if not log.is_file() or log.suffix != ".log":
        return None
    return config_value(load(log), key)


def _mean(run: Run, col: str) -> float | None:
    if col not in run.train:
        return None
    values = run.train[col].to_numpy(dtype="float64", na_value=np.nan)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _level_share(ref: Run, term: str) -> str | None:
    """Which FPN level carries most of our RPN loss, from the per-level diagnostics."""
    base = {"loss_rpn_cls": "loss_cls", "loss_rpn_bbox": "loss_bbox"}.get(term)
    levels = {lvl: _mean(ref, f"rpn.{base}.{lvl}") for lvl in _RPN_LEVELS} if base else {}
    known = {lvl: v for lvl, v in levels.items() if v is not None}
    total = sum(known.values())
    if not known or total <= 0:
        return None
    top = max(known, key=lambda lvl: known[lvl])
    return f"{known[top] / total:.0%} of our {term} comes from FPN level {top.upper()}"


def _anchor_coverage(check: DataCheck | None) -> str | None:
    if check is None or check.gts_without_anchor is None:
        return None
    of = f" (of {check.num_gts})" if check.num_gts is not None else ""
    return (
        f"{check.gts_without_anchor:.0%} of the ground truths{of} have no anchor with "
        f"IoU >= {check.pos_iou_thr:g}: compare anchor scales with your box sizes"
    )


def _causes(term: str, ref: Run, check: DataCheck | None) -> list[str]:
    """What the reference logged (and the data check found) that bears on ``term``."""
    stage = terms.term_for(term).stage
    causes: list[str] = []
    if stage == "rpn":
        num_pos = _mean(ref, "rpn.num_pos")
        if num_pos is not None:
            causes.append(f"we sample {num_pos:.0f} positive anchors per image")
        causes += [c for c in (_level_share(ref, term), _anchor_coverage(check)) if c]
    elif stage == "roi":
        num_pos, recall = _mean(ref, "rcnn.num_pos"), _mean(ref, "rpn.recall@0.5")
        if num_pos is not None:
            causes.append(f"we sample {num_pos:.0f} positive RoIs per image")
        if recall is not None:
            causes.append(f"our proposals reach {recall:.0%} of the ground truths at IoU 0.5")
    return causes


def _where(side: TermSide, x: str) -> str:
    words = _X_WORDS.get(x, x)
    if side.part_x == float(side.points["x"].iloc[0]):
        return f"from the first matched point ({words} {number(side.part_x)})"
    return f"from {words} {number(side.part_x)}"


def explain(
    sides: Sequence[TermSide], ref: Run, theirs: Run, x: str, check: DataCheck | None = None
) -> list[str]:
    """Sentences on where and (from the reference's diagnostics) why the runs part."""
    out = []
    for side in sides:
        if side.part_x is None or side.part_ratio is None:
            continue
        sentence = f"your {side.term} is {side.part_ratio:.2g}x ours {_where(side, x)}"
        out.append("; ".join([sentence, *_causes(side.term, ref, check)]))
    apart = next((s for s in sides if s.note), None)
    if apart is not None:
        out.append(
            f"no matched points ({apart.note}): train the reference over the same range "
            "(--epochs) to compare the curves; the table shows the last logged values"
        )
    coverage = _anchor_coverage(check)
    if coverage and not any(coverage in line for line in out):
        out.append(coverage)
    theirs_weights = config_value(theirs, "load_from")
    if theirs_weights and _reference_config_value(ref, "load_from") is None:
        out.append(
            f"your run starts from load_from = {theirs_weights} and ours from scratch: "
            "pretrained weights lower every loss from the start (give ours --load-from)"
        )
    return out


__all__ = [
    "DIAGNOSTICS_NAME",
    "SIDE_X_AXES",
    "SPREAD_METHODS",
    "SPREAD_SIGMAS",
    "DataCheck",
    "SideBySide",
    "TermSide",
    "reference_runs",
    "shared_terms",
    "side_by_side",
]
