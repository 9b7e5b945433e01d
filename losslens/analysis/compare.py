"""Compare runs on canonical terms: per-term statistics, final metrics, meta differences and
the first step where two runs differ beyond their own noise.

Runs are aligned on an x axis (``step``, ``epoch`` or ``images``, see
:func:`losslens.showing.plotting.x_values`); statistics over a shared range use each run's records in
that range only, so a longer run does not look better by having trained longer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from losslens.analysis import terms
from losslens.analysis.axes import x_values
from losslens.errors import FormatOptionError
from losslens.reading.formats import FAMILIES
from losslens.run import Run, display_names

#: Two runs part where their log-losses are this many combined noise sigmas apart ...
DIVERGE_SIGMAS = 3.0
#: ... at this many consecutive matched points: one point is beyond 3 sigmas by chance 0.27 % of
#: the time, three in a row about once in 50 million, so a noisy log alone never parts two runs.
DIVERGE_CONSECUTIVE = 3
#: Records per noise window: a centred rolling mean of this many log-losses follows a locally
#: straight log-curve exactly, so what is left around it is the noise. Also the fewest records a
#: run needs before its noise is measured.
NOISE_WINDOW = 9
#: MAD -> standard deviation of a normal distribution.
_MAD_TO_SIGMA = 1.4826
#: Meta keys shown in the differences table.
META_KEYS = (
    "format",
    "framework",
    "version_guess",
    "log_interval",
    "iters_per_epoch",
    "eval_units",
)


#: What :attr:`Divergence.verdict` says, one per term and run pair.
VERDICTS = ("within noise", "diverges", "differs", "too few records")


@dataclass(frozen=True)
class Divergence:
    """How run b's curve of ``term`` relates to run a's.

    The *noise band* is ``DIVERGE_SIGMAS`` combined noise sigmas of the two log-curves
    (:func:`noise_band`), as a ratio: b is within the noise of a when b's area under the curve
    over the shared range is within ``[1/band, band]`` times a's and b is never beyond the
    band at ``DIVERGE_CONSECUTIVE`` consecutive matched points (:func:`first_divergence`).
    The verdict: ``within noise``; ``diverges`` (b follows a, then leaves it at ``step``, by
    ``ratio``); ``differs`` (b is beyond the band from the first shared point, ``step``, by
    ``ratio``, or the areas differ by more than the band though no point-wise parting was
    found, ``step`` None; also a parting of a term whose definitions differ, as the two runs
    then measure different things); ``too few records`` to measure the noise (fewer than
    ``NOISE_WINDOW`` on either side). ``definitions_differ``: the frameworks define the term
    differently (see :func:`comparability_warnings`), whatever the numbers say.
    """

    term: str
    run_a: str
    run_b: str
    step: float | None  # x value of the first difference; None when they never differ
    ratio: float | None = None  # b / a (smoothed) at that point
    verdict: str = "within noise"
    band: float | None = None  # the noise band as a ratio (1.05: within 5 %)
    auc_ratio: float | None = None  # b's area under the curve / a's, over the shared range
    definitions_differ: bool = False


@dataclass
class Comparison:
    """What :func:`compare` returns; every table is a plain DataFrame."""

    runs: list[str]
    x: str
    terms: pd.DataFrame  # term, run, final, min, auc, ratio_to_first
    metrics: pd.DataFrame  # metric x run (final values)
    meta: pd.DataFrame  # key x run, only keys that differ
    divergences: list[Divergence] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _checked_names(names: Sequence[str], runs: Sequence[Run]) -> list[str]:
    if len(names) != len(runs):
        raise FormatOptionError(
            f"got {len(names)} names for {len(runs)} runs "
            f"({', '.join(r.name for r in runs)}); give one name per run, in the same order"
        )
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise FormatOptionError(f"run names must differ; repeated: {', '.join(repeated)}")
    return list(names)


def _series(
    run: Run, frame: pd.DataFrame, col: str, x: str, batch_size: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the last segment of a run (a resumed file's final attempt), finite only."""
    if "segment" in frame and frame["segment"].nunique() > 1:
        frame = frame[frame["segment"] == frame["segment"].max()]
    xs = x_values(run, frame, x, batch_size)
    ys = frame[col].to_numpy(dtype="float64", na_value=np.nan)
    ok = np.isfinite(xs) & np.isfinite(ys)
    order = np.argsort(xs[ok], kind="stable")
    return xs[ok][order], ys[ok][order]


def _stats(xs: np.ndarray, ys: np.ndarray, lo: float, hi: float) -> tuple[float, float, float]:
    """final, min and area-per-unit-x (mean level) over [lo, hi]."""
    if len(ys) == 0:
        return (math.nan, math.nan, math.nan)
    inside = (xs >= lo) & (xs <= hi)
    xi, yi = xs[inside], ys[inside]
    if len(xi) >= 2 and xi[-1] > xi[0]:
        auc = float(np.sum((yi[1:] + yi[:-1]) / 2 * np.diff(xi)) / (xi[-1] - xi[0]))
    else:
        auc = float(np.mean(yi)) if len(yi) else math.nan
    return float(ys[-1]), float(np.min(ys)), auc


def compare(
    runs: Sequence[Run],
    term_names: Sequence[str] | None = None,
    *,
    x: str = "step",
    batch_size: int | None = None,
    names: Sequence[str] | None = None,
) -> Comparison:
    """Compare two or more runs (the first is the reference for ratios). ``names``: one
    display name per run, in order (default: each file's name, made unique with ``#2``...)."""
    if len(runs) < 2:
        raise FormatOptionError("compare needs at least two runs")
    names = _checked_names(names, runs) if names is not None else display_names(runs)
    frames = [terms.canonical_frame(r) for r in runs]
    wanted = list(term_names) if term_names else _shared_terms(frames)
    columns = [
        [terms.resolve_column(r, t, f) for t in wanted] for r, f in zip(runs, frames, strict=True)
    ]
    rows = []
    divergences: list[Divergence] = []
    for j, _term in enumerate(wanted):
        series = [
            _series(r, f, cols[j], x, batch_size)
            for r, f, cols in zip(runs, frames, columns, strict=True)
        ]
        starts = [s[0][0] for s in series if len(s[0])]
        ends = [s[0][-1] for s in series if len(s[0])]
        lo, hi = (max(starts), min(ends)) if starts else (math.nan, math.nan)
        stats = [_stats(xs, ys, lo, hi) for xs, ys in series]
        for k, (name, (final, low, auc)) in enumerate(zip(names, stats, strict=True)):
            ref = stats[0][2]
            rows.append(
                {
                    "term": columns[0][j],
                    "run": name,
                    "logged_as": ", ".join(frames[k].attrs["columns"][columns[k][j]].sources),
                    "final": final,
                    "min": low,
                    "auc": auc,
                    "ratio_to_first": auc / ref if ref and np.isfinite(ref) else math.nan,
                }
            )
        for k in range(1, len(runs)):
            ref = stats[0][2]
            auc_ratio = stats[k][2] / ref if ref and np.isfinite(ref) else math.nan
            pair = [runs[0], runs[k]]
            differ = _definitions_differ(pair, columns[0][j]) is not None
            divergences.append(
                _verdict(columns[0][j], names[0], names[k], series[0], series[k], auc_ratio, differ)
            )
    return Comparison(
        runs=names,
        x=x,
        terms=pd.DataFrame(
            rows, columns=["term", "run", "logged_as", "final", "min", "auc", "ratio_to_first"]
        ),
        metrics=final_metrics(runs, names),
        meta=meta_differences(runs, names),
        divergences=divergences,
        warnings=comparability_warnings(runs, [c for c in columns[0]]),
    )


def _shared_terms(frames: Sequence[pd.DataFrame]) -> list[str]:
    first = terms.loss_columns(frames[0])
    shared = [t for t in first if all(t in f.columns for f in frames[1:])]
    if not shared:
        have = "; ".join(", ".join(terms.loss_columns(f)) or "none" for f in frames)
        raise FormatOptionError(
            f"the runs share no loss term (canonical names per run: {have}); name them with --terms"
        )
    return shared


def noise_sigma(y: np.ndarray) -> float:
    """Robust sigma of a positive curve's log values around their centred rolling mean over
    ``NOISE_WINDOW`` records (full windows only).

    A rolling mean is exact on a straight line, so a log-curve that is locally straight (an
    exponential decay) leaves only its noise; a rolling median is not enough, as it returns the
    middle record itself wherever the noise is smaller than the trend between records. The
    residual of a record against a mean that includes it has variance ``sigma^2 (1 - 1/w)``;
    the MAD keeps bends, lr steps and spikes out of the estimate.
    """
    logy = np.log(np.clip(np.asarray(y, dtype="float64"), 1e-12, None))
    half = NOISE_WINDOW // 2
    mean = pd.Series(logy).rolling(NOISE_WINDOW, center=True).mean().to_numpy()
    residuals = (logy - mean)[half : len(logy) - half]
    if len(residuals) == 0:
        return math.nan
    mad = float(np.median(np.abs(residuals - np.median(residuals))))
    return _MAD_TO_SIGMA * mad / math.sqrt(1.0 - 1.0 / NOISE_WINDOW)


def noise_band(a: np.ndarray, b: np.ndarray) -> float | None:
    """The ratio two positive curves may differ by and still be one curve plus noise:
    ``exp(DIVERGE_SIGMAS * hypot(sigma_a, sigma_b))`` of their log-curves (:func:`noise_sigma`);
    None with too few records (fewer than ``NOISE_WINDOW``) or a non-positive value."""
    if len(a) < NOISE_WINDOW or len(b) < NOISE_WINDOW or (a <= 0).any() or (b <= 0).any():
        return None
    return math.exp(DIVERGE_SIGMAS * math.hypot(noise_sigma(a), noise_sigma(b)) + 1e-9)


def _verdict(
    term: str,
    run_a: str,
    run_b: str,
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    auc_ratio: float,
    definitions_differ: bool = False,
) -> Divergence:
    """One verdict for run b against run a (see :class:`Divergence`)."""
    band = noise_band(a[1], b[1])
    auc = auc_ratio if math.isfinite(auc_ratio) else None
    if band is None:
        return Divergence(
            term, run_a, run_b, None, None, "too few records", None, auc, definitions_differ
        )
    parting = _parting(a, b)
    if parting is not None:
        step, ratio, from_start = parting
        verdict = "differs" if from_start or definitions_differ else "diverges"
        return Divergence(term, run_a, run_b, step, ratio, verdict, band, auc, definitions_differ)
    verdict = "within noise"
    if auc is not None and abs(math.log(auc)) > math.log(band):
        verdict = "differs"
    return Divergence(term, run_a, run_b, None, None, verdict, band, auc, definitions_differ)


def first_divergence(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[float | None, float | None]:
    """First x where curve b is beyond the noise band of curve a (log scale), and the typical
    ratio b / a while it stays beyond; ``(None, None)`` where b never is (see :func:`_parting`)."""
    parting = _parting(a, b)
    return (None, None) if parting is None else parting[:2]


def _parting(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[float, float, bool] | None:
    """(x, ratio, from the first shared point) of the first of ``DIVERGE_CONSECUTIVE``
    consecutive matched points where ``|log b - log a|`` exceeds ``DIVERGE_SIGMAS`` combined
    noise sigmas; None where there is none. The ratio is b / a's median over the points from
    there that stay beyond the band (runs that part early and meet again report the parting).

    Matched points are the logged x values of the sparser run inside the shared range, the other
    run interpolated there on log values: interpolating the sparser run would make one noisy
    record count at several points. Raw records are compared, not smoothed ones, so a step
    change is found at its own x, not a smoothing window earlier.
    """
    (xa, ya), (xb, yb) = a, b
    if len(xa) < NOISE_WINDOW or len(xb) < NOISE_WINDOW or (ya <= 0).any() or (yb <= 0).any():
        return None
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    in_a, in_b = (xa >= lo) & (xa <= hi), (xb >= lo) & (xb <= hi)
    if in_b.sum() < in_a.sum():
        grid = xb[in_b]
        diff = np.log(yb[in_b]) - np.interp(grid, xa, np.log(ya))
    else:
        grid = xa[in_a]
        diff = np.interp(grid, xb, np.log(yb)) - np.log(ya[in_a])
    limit = DIVERGE_SIGMAS * math.hypot(noise_sigma(ya), noise_sigma(yb)) + 1e-9
    beyond = np.abs(diff) > limit
    for k in range(len(beyond) - DIVERGE_CONSECUTIVE + 1):
        if beyond[k : k + DIVERGE_CONSECUTIVE].all():
            end = k + DIVERGE_CONSECUTIVE
            while end < len(beyond) and beyond[end]:
                end += 1
            # the typical ratio while b stays beyond the band, not the first point's
            return float(grid[k]), float(math.exp(np.median(diff[k:end]))), k == 0
    return None


def final_metrics(runs: Sequence[Run], names: Sequence[str]) -> pd.DataFrame:
    """Last value of every evaluation metric, one column per run (percent put in fractions).

    Metrics are matched across frameworks by :func:`metric_name`: detectron2's ``bbox/AP50``,
    mmdet's ``bbox_mAP_50`` and a VOC evaluation's ``mAP`` (AP at IoU 0.5) share one row.
    """
    data: dict[str, dict[str, float]] = {}
    for run, name in zip(runs, names, strict=True):
        ev = run.evals
        values: dict[str, float] = {}
        logged = [c for c in ev.columns if c not in terms.INDEX_COLUMNS]
        for col in logged:
            if ev[col].dtype.kind != "f" or not ev[col].notna().any():
                continue
            value = float(ev[col].dropna().iloc[-1])
            if run.meta.get("eval_units") == "percent" and value >= 0 and is_ap_metric(col):
                value /= 100.0
            values.setdefault(metric_name(col, logged), value)
        data[name] = values
    return pd.DataFrame(data)


#: detectron2's COCO names (after the ``bbox/`` or ``segm/`` task) -> mmdet's suffixes.
_COCO_SUFFIX = {"AP": "", "AP50": "_50", "AP75": "_75", "APs": "_s", "APm": "_m", "APl": "_l"}


def metric_name(col: str, logged: Sequence[str] = ()) -> str:
    """The name ``col`` is matched under across frameworks (mmdet's: ``bbox_mAP_50``).

    ``coco/`` and ``pascal_voc/`` prefixes go; ``bbox/AP50`` -> ``bbox_mAP_50``; a VOC ``mAP``
    or ``AP50`` (mmdet's VOC evaluation, IoU 0.5) -> ``bbox_mAP_50``, unless the run (its
    ``logged`` columns) also has an ``AP50`` that the ``mAP`` must then stay apart from.
    """
    name = _strip_prefix(col)
    task, _, last = name.rpartition("/")
    if task in ("bbox", "segm") and last in _COCO_SUFFIX:
        return f"{task}_mAP{_COCO_SUFFIX[last]}"
    bare = {_strip_prefix(c) for c in logged}
    if name == "AP50" or (name == "mAP" and "AP50" not in bare):
        return "bbox_mAP_50"
    return name


def _strip_prefix(col: str) -> str:
    for prefix in ("coco/", "pascal_voc/"):
        if col.startswith(prefix):
            return col[len(prefix) :]
    return col


#: An AP/AR-type metric, by the last part of its name: ``bbox/AP50``, ``segm/APs``,
#: ``bbox/AP-car``, ``bbox_mAP_50``, ``AR@100``. Only these are percentages in a "percent" log;
#: detectron2's ``inference/s_per_iter`` sits beside them and is seconds.
_AP_METRIC_RE = re.compile(r"^(?:[a-z]+_)?m?A[PR][sml]?(?![A-Za-z])")


def is_ap_metric(col: str) -> bool:
    """Whether ``col`` is an average precision or recall (the metrics a log may give in %)."""
    return _AP_METRIC_RE.match(col.rsplit("/", 1)[-1]) is not None


def meta_differences(runs: Sequence[Run], names: Sequence[str]) -> pd.DataFrame:
    """Meta and config lines that differ between runs (one row per key)."""
    rows: dict[str, list[str]] = {}
    for key in META_KEYS:
        values = [str(r.format if key == "format" else r.meta.get(key, "")) for r in runs]
        if len(set(values)) > 1:
            rows[key] = values
    extra = {
        "training records": [str(len(r.train)) for r in runs],
        "last step": [
            str(int(r.train["step"].max())) if "step" in r.train and len(r.train) else ""
            for r in runs
        ],
    }
    rows.update({k: v for k, v in extra.items() if len(set(v)) > 1})
    rows.update({f"config: {k}": v for k, v in config_differences(runs).items()})
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(names))


_ABSENT = "(absent)"


def config_differences(runs: Sequence[Run]) -> dict[str, list[str]]:
    """Config settings that differ between runs, dotted key -> one value text per run.

    Where two or more runs' config dumps can be translated into one vocabulary
    (:func:`losslens.analysis.run_settings.config_dump_settings`: mmdet 2.x keys with their meaning,
    from mmdet 2.x/3.x and detectron2 dumps), the translated settings are compared first:
    ``MODEL.RESNETS.DEPTH: 50`` and ``model.backbone.depth = 50`` are one setting and no row,
    ``SOLVER.IMS_PER_BATCH: 60`` on 6 GPUs is ``data.samples_per_gpu`` ``10 (60 images on 6
    GPUs)``. Then, as their dumps spell them, the keys that not every translation has and the
    dump keys that no translation reads.
    """
    translated = [_translated_config(r) for r in runs]
    raw = [_config_items(r) for r in runs]
    if sum(t is not None for t in translated) < 2:
        return _differing(list(dict.fromkeys(k for c in raw for k in sorted(c))), raw)
    settings = [
        {k: _setting_text(k, v, t[0].get("gpus")) for k, v in t[0].items()} if t is not None else c
        for t, c in zip(translated, raw, strict=True)
    ]
    have = [set(t[0]) for t in translated if t is not None]
    matched = sorted(set.intersection(*have))
    partial = sorted(set.union(*have) - set(matched))
    unread = sorted(
        {k for t, c in zip(translated, raw, strict=True) for k in c if t is None or k not in t[1]}
        - set(matched)
        - set(partial)
    )
    return _differing(matched + partial, settings) | _differing(unread, raw)


def _differing(keys: Sequence[str], configs: Sequence[dict[str, str]]) -> dict[str, list[str]]:
    rows = {}
    for key in keys:
        values = [c.get(key, _ABSENT) for c in configs]
        if len(set(values)) > 1:
            rows[key] = values
    return rows


def _translated_config(run: Run) -> tuple[dict[str, Any], set[str]] | None:
    """The run's translated settings and the dump keys the translation reads (a key is read
    when leaving it out changes the settings); None without a translatable dump."""
    from losslens.analysis.run_settings import config_dump_settings
    from losslens.reading.config_dump import config_values

    values = config_values(run.meta.get("config"))
    settings = config_dump_settings(run, values) if values else None
    if settings is None:
        return None
    read = {
        key
        for key in values
        if config_dump_settings(run, {k: v for k, v in values.items() if k != key}) != settings
    }
    return settings, read


def _canonical(value: Any) -> Any:
    """Tuples as lists and whole floats as ints, so equal settings read alike (``[8.0]`` from
    a detectron2 anchor size is mmdet's ``[8]``)."""
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _setting_text(key: str, value: Any, gpus: Any) -> str:
    """A translated setting as shown: lists in brackets, strings bare; a per-GPU batch with
    the total when the run trained on several GPUs."""
    text = str(_canonical(value))
    if key == "data.samples_per_gpu" and isinstance(gpus, int) and gpus > 1:
        if isinstance(value, int):
            text += f" ({value * gpus} images on {gpus} GPUs)"
    return text


#: Config keys that change the losses, by what they set (matched on the lower-cased dotted key,
#: mmdet and detectron2 spellings): everything else (workers, hooks, test settings) is "other".
LOSS_CONFIG_GROUPS = {
    "model": re.compile(
        r"^config: (model\.(type|backbone\.(type|depth)|.*num_classes|.*loss_\w+\.type)"
        r"|model\.backbone\.(style|frozen_stages|norm_eval|norm_cfg\.\w+)"
        r"|model\.rpn_head\.anchor_generator\.(scales|ratios|strides)"
        r"|model\.train_cfg\.\w+\.(assigner\.(pos|neg)_iou_thr|sampler\.(num|pos_fraction))"
        r"|model\.(meta_architecture|backbone\.name|resnets\.depth|roi_heads\.num_classes))$"
    ),
    "data": re.compile(
        r"^config: (dataset_type|data\.train\.(type|ann_file)|.*img_scale"
        r"|datasets\.train|input\.(min|max)_size_train)$"
    ),
    "schedule": re.compile(
        r"^config: (optimizer\.(type|lr|momentum|weight_decay)|lr_config\.\w+|total_epochs"
        r"|runner\.max_(epochs|iters)|train_cfg\.max_(epochs|iters)|param_scheduler.*"
        r"|optim_wrapper\.optimizer\.(type|lr|momentum|weight_decay)|lr|max_epochs"
        r"|solver\.(base_lr|max_iter|steps|momentum|weight_decay|warmup_iters|gamma))$"
    ),
    "batch": re.compile(
        r"^config: (data\.samples_per_gpu|.*train_dataloader\.batch_size|.*batch_size"
        r"|solver\.ims_per_batch|auto_scale_lr\.base_batch_size|gpus)$"
    ),
}


def config_groups(meta: pd.DataFrame) -> tuple[dict[str, list[str]], list[str]]:
    """The config rows of :func:`meta_differences` that change the losses, by group (model,
    data, schedule, batch; see :data:`LOSS_CONFIG_GROUPS`), and the other config rows."""
    groups: dict[str, list[str]] = {g: [] for g in LOSS_CONFIG_GROUPS}
    others: list[str] = []
    for key in meta.index:
        if not str(key).startswith("config: "):
            continue
        lowered = str(key).lower()
        group = next((g for g, rx in LOSS_CONFIG_GROUPS.items() if rx.match(lowered)), None)
        (groups[group].append(key) if group else others.append(key))
    return {g: keys for g, keys in groups.items() if keys}, others


def _config_items(run: Run) -> dict[str, str]:
    """The run's config dump as dotted keys (see :mod:`losslens.reading.config_dump`)."""
    from losslens.reading.config_dump import flatten_config

    return flatten_config(run.meta.get("config"))


#: Families whose losses have the same meaning unless a term's normaliser says otherwise:
#: mmdetection 1.x, 2.x and 3.x compute the same losses (mmengine changed the logging).
_SAME_SEMANTICS = {"mmdet1": "mmdetection", "mmdet2": "mmdetection", "mmdet3": "mmdetection"}


def _definitions_differ(runs: Sequence[Run], col: str) -> str | None:
    """How the runs' frameworks define ``col`` (``"mmdetection 2.x: ...; detectron2: ..."``)
    where they differ in loss type or normaliser; None where they agree."""
    fams = [terms.family(r) for r in runs]
    keys = {_SAME_SEMANTICS.get(k, k) for k in (terms.comparable_key(col, f) for f in fams)}
    if len(keys) < 2:
        return None
    return "; ".join(
        f"{FAMILIES[f].title if f in FAMILIES else f}: {terms.comparable_key(col, f)}"
        for f in dict.fromkeys(fams)
    )


def comparability_warnings(runs: Sequence[Run], columns: Sequence[str]) -> list[str]:
    """Terms whose loss type or normaliser differs between the runs' frameworks."""
    out = []
    for col in columns:
        detail = _definitions_differ(runs, col)
        if detail is not None:
            out.append(f"{col} is not comparable across these frameworks ({detail})")
    smoothing = {terms.smoothing_of(r) for r in runs}
    if len(smoothing) > 1:
        out.append(
            "the runs were smoothed differently before printing: " + "; ".join(sorted(smoothing))
        )
    return out


def log_noise(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Rolling-median (``NOISE_WINDOW``) log-curve and the robust sigma of what is left around
    it: the within-run spread of :mod:`losslens.showing.side_by_side`, whose tests pin this form.

    It reads a noise of 0 wherever the noise is smaller than the trend between records (the
    median of a monotone window is its middle record); compare's verdicts use
    :func:`noise_sigma`, which side_by_side should use too.
    """
    logy = np.log(np.clip(y, 1e-12, None))
    smooth = pd.Series(logy).rolling(NOISE_WINDOW, min_periods=1, center=True).median().to_numpy()
    return smooth, float(np.median(np.abs(logy - smooth)) * _MAD_TO_SIGMA)


# Public name of the helper :mod:`losslens.showing.side_by_side` builds on (one implementation).
term_series = _series
