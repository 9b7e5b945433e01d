"""THE canonical term table: what each logged loss measures, its names per framework, and how
each framework normalises and smooths it (data from ``shared/FORMATS.md`` section 3).

Canonical names are mmdetection 2.x's (``loss_rpn_cls``, ``loss_rpn_bbox``, ``loss_cls``,
``loss_bbox``, ``acc``, ``loss_mask``, ``loss``) because they are the most widespread; the short
aliases of FORMATS.md (``rpn.cls``, ``roi.reg`` ...) are accepted too. Single-stage heads get
their own terms (``dense_cls``, ``dense_bbox``, ``dense_centerness``): the ``loss_cls`` of a
RetinaNet log is a focal loss over all anchors, not an RoI classifier, so aliases depend on the
format *and* on whether the run has an RPN.

Cascade stages: mmdet ``s{k}.loss_cls`` and detectron2 ``loss_cls_stage{k}`` both become
``s{k}.loss_cls`` (stage k of term ``loss_cls``). Detectron's per-level RPN terms
``loss_rpn_cls_fpn2..6`` are summed into ``loss_rpn_cls``. Accuracies are converted to percent
(mmdet's unit); the conversion is recorded in :class:`CanonicalColumn`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd

from losslens.analysis import _family_terms, _side_terms
from losslens.analysis._term_ranges import RANGES
from losslens.analysis._term_table import BASE_TERMS, Term
from losslens.errors import FormatOptionError
from losslens.reading.formats import FAMILIES, REGISTRY
from losslens.reading.frame import INDEX_COLUMNS

if TYPE_CHECKING:
    from losslens.run import Run

#: Standard non-loss columns every format shares (already canonical).
STANDARD_COLUMNS = ("lr", "eta_s", "time_s", "data_time_s", "memory_mb")

_SPECS = (
    *_family_terms.TERM_SPECS,
    *_side_terms.SIDE_TERM_SPECS,
    *_side_terms.EXTRA_TERM_SPECS,
)
_TERMS = tuple(
    replace(
        t,
        names={**t.names, **_family_terms.EXTRA_NAMES.get(t.name, {})},
        normalisation={**t.normalisation, **_family_terms.EXTRA_NORMALISATION.get(t.name, {})},
        ranges=RANGES.get(t.name, ()),
    )
    for t in BASE_TERMS
) + tuple(Term(**spec, ranges=RANGES.get(spec["name"], ())) for spec in _SPECS)
#: Canonical name -> Term.
TERMS: dict[str, Term] = {t.name: t for t in _TERMS}
#: Accepted short names (FORMATS.md 6.1) -> canonical name.
SHORT_NAMES: dict[str, str] = {t.short: t.name for t in _TERMS if t.short}

# Logged name -> canonical name, per family (two-stage runs). Values multiplied by the factor.
_TWO_STAGE_ALIASES: dict[str, dict[str, tuple[str, float]]] = {
    "mmdet1": {
        "loss_rpn_reg": ("loss_rpn_bbox", 1.0),
        "loss_reg": ("loss_bbox", 1.0),
    },
    "mmdet2": {"loss_rpn_reg": ("loss_rpn_bbox", 1.0), "loss_reg": ("loss_bbox", 1.0)},
    "mmdet3": {},
    "detectron2": {
        "loss_rpn_loc": ("loss_rpn_bbox", 1.0),
        "loss_box_reg": ("loss_bbox", 1.0),
        "total_loss": ("loss", 1.0),
        "fast_rcnn/cls_accuracy": ("acc", 100.0),
        "fast_rcnn/fg_cls_accuracy": ("fg_acc", 100.0),
        # pre-release names still shown in the JSONWriter docstring
        "loss_classifier": ("loss_cls", 1.0),
        "loss_rpn_box": ("loss_rpn_bbox", 1.0),
    },
    "maskrcnn_benchmark": {
        "loss_objectness": ("loss_rpn_cls", 1.0),
        "loss_rpn_box_reg": ("loss_rpn_bbox", 1.0),
        "loss_classifier": ("loss_cls", 1.0),
        "loss_box_reg": ("loss_bbox", 1.0),
    },
    "detectron": {"accuracy_cls": ("acc", 100.0)},
    "losslens": {},
}
_TWO_STAGE_ALIASES["torchvision"] = dict(_TWO_STAGE_ALIASES["maskrcnn_benchmark"])
_TWO_STAGE_ALIASES.update(_family_terms.ALIASES)  # one-stage families: looked up the same way
_DENSE_ALIASES: dict[str, tuple[str, float]] = {
    "loss_cls": ("dense_cls", 1.0),
    "loss_bbox": ("dense_bbox", 1.0),
    "loss_reg": ("dense_bbox", 1.0),
    "loss_box_reg": ("dense_bbox", 1.0),
    "loss_centerness": ("dense_centerness", 1.0),
    "classification": ("dense_cls", 1.0),
    "bbox_regression": ("dense_bbox", 1.0),
    "total_loss": ("loss", 1.0),
}
_RPN_SIGNS = (
    "loss_rpn_cls",
    "loss_objectness",
    "loss_rpn_bbox",
    "loss_rpn_reg",
    "loss_rpn_loc",
    "loss_rpn_box_reg",
)
_STAGE_PREFIX_RE = re.compile(r"^s(\d+)\.(.+)$")
_STAGE_SUFFIX_RE = re.compile(r"^(.+)_stage(\d+)$")
_FPN_LEVEL_RE = re.compile(r"^(loss_rpn_(?:cls|bbox))_fpn\d+$")
_GLOBAL_AVG_SUFFIX = "_global_avg"


@dataclass(frozen=True)
class CanonicalColumn:
    """Where a canonical column came from: the logged names, the scale applied, the stage."""

    name: str
    term: str | None
    sources: tuple[str, ...]
    scale: float = 1.0
    stage: int | None = None

    @property
    def note(self) -> str:
        parts = []
        if len(self.sources) > 1:
            parts.append("sum of " + ", ".join(self.sources))
        elif self.sources and self.sources[0] != self.name:
            parts.append(f"logged as {self.sources[0]}")
        if self.scale != 1.0:
            parts.append(f"x{self.scale:g}")
        return "; ".join(parts)


def family(run: Run) -> str:
    """The framework family of a run (``mmdet2``, ``detectron2`` ...), from its format."""
    fam = REGISTRY[run.format].family.name if run.format in REGISTRY else ""
    if fam == "mmdet2" and "1.x" in str(run.meta.get("version_guess", "")):
        return "mmdet1"
    if not fam:
        framework = str(run.meta.get("framework", "")).lower()
        fam = next((f for f in FAMILIES if f in framework), "mmdet2")
    return fam


#: mmengine's ``LogProcessor(window_size=10)`` default, in force when the dumped config sets none.
_MMENGINE_DEFAULT_WINDOW = 10


def smoothing_of(run: Run) -> str:
    """What the framework did to ``run``'s values before printing them: its family's rule
    (:attr:`Family.smoothing <losslens.reading.formats._contract.Family.smoothing>`), with the actual window of an mmengine run whose log holds
    its config (``log_processor.window_size``, else the LogProcessor default)."""
    fam = family(run)
    if fam == "mmdet3" and run.meta.get("config"):
        processor = run.meta.get("log_processor") or {}
        window = processor.get("window_size") if isinstance(processor, dict) else None
        source = "set in the config" if window else "the default"
        return (
            f"mean over the last {window or _MMENGINE_DEFAULT_WINDOW} iterations "
            f"(mmengine LogProcessor, window_size {source})"
        )
    return FAMILIES[fam].smoothing if fam in FAMILIES else ""


def is_two_stage(columns: Iterable[str]) -> bool:
    cols = list(columns)
    return any(c in _RPN_SIGNS or _FPN_LEVEL_RE.match(c) for c in cols)


def _base_alias(name: str, fam: str, two_stage: bool) -> tuple[str, float]:
    if not two_stage and name in _DENSE_ALIASES:
        return _DENSE_ALIASES[name]
    table = _TWO_STAGE_ALIASES.get(fam, {})
    if name in table:
        return table[name]
    return name, 1.0


def canonical_name(name: str, fam: str, two_stage: bool = True) -> tuple[str, float, int | None]:
    """Canonical column name, scale and stage of one logged name in family ``fam``."""
    if name.endswith(_GLOBAL_AVG_SUFFIX):
        base, scale, stage = canonical_name(name[: -len(_GLOBAL_AVG_SUFFIX)], fam, two_stage)
        return base + _GLOBAL_AVG_SUFFIX, scale, stage
    match = _STAGE_PREFIX_RE.match(name)
    if match is not None:
        base, scale = _base_alias(match.group(2), fam, True)
        return f"s{match.group(1)}.{base}", scale, int(match.group(1))
    match = _STAGE_SUFFIX_RE.match(name)
    if match is not None and match.group(1).startswith("loss"):
        base, scale = _base_alias(match.group(1), fam, True)
        return f"s{match.group(2)}.{base}", scale, int(match.group(2))
    match = _FPN_LEVEL_RE.match(name)
    if match is not None:
        return match.group(1), 1.0, None
    base, scale = _base_alias(name, fam, two_stage)
    return base, scale, None


def _term_of(canonical: str) -> str | None:
    base = canonical.split(".", 1)[1] if _STAGE_PREFIX_RE.match(canonical) else canonical
    return base if base in TERMS else None


def canonical_columns(run: Run) -> dict[str, CanonicalColumn]:
    """Canonical column -> its provenance, for every logged column of ``run.train``."""
    fam = family(run)
    logged = [c for c in run.train.columns if c not in INDEX_COLUMNS]
    two_stage = is_two_stage(logged)
    sources: dict[str, list[str]] = {}
    info: dict[str, tuple[float, int | None]] = {}
    for col in logged:
        if col in STANDARD_COLUMNS:
            sources.setdefault(col, []).append(col)
            info[col] = (1.0, None)
            continue
        name, scale, stage = canonical_name(col, fam, two_stage)
        sources.setdefault(name, []).append(col)
        info[name] = (scale, stage)
    # A run that logs both the summed term and per-level terms (Detectron): keep the sum logged.
    for name, cols in sources.items():
        if name in cols and len(cols) > 1:
            sources[name] = [name]
    return {
        name: CanonicalColumn(name, _term_of(name), tuple(cols), info[name][0], info[name][1])
        for name, cols in sources.items()
    }


def canonical_frame(run: Run) -> pd.DataFrame:
    """``run.train`` with canonical column names; ``frame.attrs['columns']`` keeps provenance.

    ``frame.attrs['original_names']`` maps each canonical column to its logged names.
    """
    train = run.train
    mapping = canonical_columns(run)
    data: dict[str, pd.Series] = {c: train[c] for c in INDEX_COLUMNS if c in train.columns}
    for name, col in mapping.items():
        if len(col.sources) == 1:
            values = train[col.sources[0]].astype("float64")
        else:
            values = train[list(col.sources)].astype("float64").sum(axis=1, min_count=1)
        data[name] = values * col.scale if col.scale != 1.0 else values
    frame = pd.DataFrame(data, index=train.index)
    frame.attrs["columns"] = mapping
    frame.attrs["original_names"] = {name: list(col.sources) for name, col in mapping.items()}
    return frame


def all_aliases() -> dict[str, set[str]]:
    """Every logged name any family uses -> the canonical names it can stand for."""
    out: dict[str, set[str]] = {}
    for table in _TWO_STAGE_ALIASES.values():
        for logged, (canon, _) in table.items():
            out.setdefault(logged, set()).add(canon)
    for logged, (canon, _) in _DENSE_ALIASES.items():
        out.setdefault(logged, set()).add(canon)
    for short, canon in SHORT_NAMES.items():
        out.setdefault(short, set()).add(canon)
    return out


class TermNotFoundError(FormatOptionError):
    """A requested term is not in a run; the message lists what is there."""


def available_terms(run: Run) -> list[str]:
    """Plottable names of a run: ``logged (canonical)`` where they differ."""
    shown = []
    for name, col in canonical_columns(run).items():
        for source in col.sources:
            shown.append(source if source == name else f"{source} (= {name})")
    return shown


def resolve_column(run: Run, name: str, frame: pd.DataFrame | None = None) -> str:
    """The column of ``canonical_frame(run)`` that ``name`` (logged, canonical or short) means.

    Raises :class:`TermNotFoundError` naming what the run has and the likely intended term.
    """
    frame = canonical_frame(run) if frame is None else frame
    mapping: dict[str, CanonicalColumn] = frame.attrs.get("columns", {})
    if name in mapping:
        return name
    for canon, col in mapping.items():
        if name in col.sources:
            return canon
    if name in SHORT_NAMES and SHORT_NAMES[name] in mapping:
        return SHORT_NAMES[name]
    raise TermNotFoundError(_missing_message(run, name, mapping), path=run.path)


def _missing_message(run: Run, name: str, mapping: Mapping[str, CanonicalColumn]) -> str:
    hints = []
    for canon in sorted(all_aliases().get(name, set()) | ({name} if name in TERMS else set())):
        for have, col in mapping.items():
            if have == canon or have.endswith("." + canon):
                hints.append(f"{col.sources[0]} (canonical {canon})")
    if not hints:
        pool = list(mapping) + [s for col in mapping.values() for s in col.sources]
        hints = difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
    available = ", ".join(available_terms(run)) or "none (no training records)"
    text = f"term {name!r} is not in this {run.format} log"
    if not is_two_stage(mapping) and (
        name in _RPN_SIGNS or (name in TERMS and TERMS[name].stage in ("rpn", "roi"))
    ):
        text += " (a single-stage detector: no RPN or RoI head terms)"
    if hints:
        text += f"; did you mean {' or '.join(dict.fromkeys(hints))}?"
    return sentences(text, f"Available: {available}")


def sentences(*parts: str) -> str:
    """``parts`` as one line of sentences: each ends with a full stop unless it already ends
    with punctuation (``"... log" + "Available: x"`` -> ``"... log. Available: x."``)."""
    return " ".join(p if p.endswith((".", "?", "!")) else p + "." for p in parts if p)


@dataclass(frozen=True)
class TermLookup:
    """The :class:`Term` a logged name means, and how that name relates to it (``note``:
    a DETR auxiliary layer, a validation value, an FPN level ...; empty for the term itself)."""

    term: Term
    asked: str
    note: str = ""


# Logged-name variants no table lists, rewritten towards a listed name, in order; the note says
# what the variant is. DETR: https://github.com/facebookresearch/detr models/detr.py (aux
# layers ``_0``.., ``*_unscaled``), RT-DETR ``_aux_N``/``_dn_N``, Deformable-DETR ``_enc``.
_VARIANTS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"^val_(mAP.*)$"), "coco_mAP", r"COCO \1"),
    (re.compile(r"^val_(AR.*)$"), "coco_AR", r"COCO \1"),
    (re.compile(r"^(.+)_global_avg$"), r"\1", "the average since the start of the run"),
    (re.compile(r"^(.+)_unscaled$"), r"\1", "before its loss weight is applied"),
    (re.compile(r"^(?:test|val)_(.+)$"), r"train_\1", "the validation value"),
    (re.compile(r"^val/(.+)$"), r"train/\1", "the validation value"),
    (re.compile(r"^(.+)_aux_(\d+)$"), r"\1", r"auxiliary decoder layer \2"),
    (re.compile(r"^(.+)_dn_(\d+)$"), r"\1", r"denoising queries, decoder layer \2"),
    (re.compile(r"^(.+)_enc$"), r"\1", "the encoder's proposals (two-stage DETR)"),
    (re.compile(r"^(train_.+)_(\d+)$"), r"\1", r"auxiliary decoder layer \2"),
    (re.compile(r"^(loss.*)_stage(\d+)$"), r"\1", r"cascade stage \2"),
    (re.compile(r"^(?:lr/pg|x/lr)(\d+)$"), "lr", r"parameter group \1"),
    (re.compile(r"^grad_norm\.(\w+)$"), "grad_norm.<module>", r"module group \1"),
    (re.compile(r"^rpn\.loss_(cls|bbox)\.p(\d)$"), r"rpn.loss_\1.<level>", r"FPN level p\2"),
    (re.compile(r"^loss_rpn_(cls|bbox)_fpn(\d)$"), r"rpn.loss_\1.<level>", r"FPN level p\2"),
)
_MAX_REWRITES = 6


def _logged_names() -> dict[str, str]:
    """Every name listed in a term's ``names`` (annotations cut off) -> the first such term;
    DETR's ``*_unscaled`` names are listed without the suffix too."""
    index: dict[str, str] = {}
    for t in _TERMS:
        for names in t.names.values():
            for entry in names:
                name = entry.split(" (")[0]
                if not name.startswith(".."):
                    index.setdefault(name, t.name)
                    index.setdefault(name.removesuffix("_unscaled"), t.name)
    return index


_LOGGED_NAMES = _logged_names()


def _known(name: str) -> Term | None:
    if name in TERMS:
        return TERMS[name]
    if name in SHORT_NAMES:
        return TERMS[SHORT_NAMES[name]]
    base = _STAGE_PREFIX_RE.sub(r"\2", name)
    if base in TERMS:
        return TERMS[base]
    canon = _alias_targets(base)
    if canon and canon[0] in TERMS:
        return TERMS[canon[0]]
    found = _LOGGED_NAMES.get(base)
    return TERMS[found] if found else None


def lookup(name: str) -> TermLookup:
    """The term a canonical, short or logged name (any family, any variant) stands for.

    Raises :class:`TermNotFoundError`: one line with the close matches and the known terms.
    """
    current, notes = name, list[str]()
    for _ in range(_MAX_REWRITES):
        found = _known(current)
        if found is not None:
            return TermLookup(found, name, "; ".join(notes))
        for pattern, target, note in _VARIANTS:
            if pattern.match(current):
                notes.append(pattern.sub(note, current))
                current = pattern.sub(target, current)
                break
        else:
            break
    pool = list(TERMS) + list(SHORT_NAMES) + list(all_aliases()) + list(_LOGGED_NAMES)
    close = difflib.get_close_matches(name, list(dict.fromkeys(pool)), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise TermNotFoundError(
        sentences(f"unknown term {name!r}{hint}", f"Known terms: {', '.join(TERMS)}")
    )


def term_for(name: str) -> Term:
    """The :class:`Term` for a canonical, short or logged name (any family): :func:`lookup`."""
    return lookup(name).term


def _alias_targets(logged: str) -> list[str]:
    """Canonical terms a logged name stands for, the two-stage meaning first: a name shared by
    both kinds of detector (``loss_box_reg``, ``loss_cls``) means the RoI head's term in the
    runs that have an RPN, and the dense head's only in single-stage runs."""
    two_stage = {
        canon
        for table in _TWO_STAGE_ALIASES.values()
        for key, (canon, _) in table.items()
        if key == logged
    }
    found = all_aliases().get(logged, set())
    return sorted(found & two_stage) + sorted(found - two_stage)


def other_meanings(name: str) -> list[Term]:
    """Terms other than :func:`term_for`'s that a logged ``name`` means in other detectors
    (``loss_box_reg`` is ``dense_bbox`` in a RetinaNet); empty for canonical and short names."""
    if name in TERMS or name in SHORT_NAMES:
        return []
    base = _STAGE_PREFIX_RE.sub(r"\2", name)
    return [TERMS[c] for c in _alias_targets(base)[1:] if c in TERMS]


#: (training prefix, validation prefix) of families that log validation losses per epoch.
_VALIDATION_PREFIXES: tuple[tuple[str, str], ...] = tuple(
    f.validation_prefixes for f in REGISTRY.values() if f.validation_prefixes is not None
)


def validation_partner(frame: pd.DataFrame, column: str) -> str | None:
    """The validation loss logged beside training term ``column`` of a canonical frame
    (``val/box_loss`` for ``train/box_loss``, ``test_loss_ce`` for ``train_loss_ce``), if any."""
    mapping: Mapping[str, CanonicalColumn] = frame.attrs.get("columns", {})
    logged = mapping[column].sources[0] if column in mapping else column
    for train_prefix, val_prefix in _VALIDATION_PREFIXES:
        partner = val_prefix + logged[len(train_prefix) :]
        if logged.startswith(train_prefix) and partner in frame.columns:
            return partner
    return None


def loss_columns(frame: pd.DataFrame) -> list[str]:
    """Loss-like columns of a (canonical) train frame, total first; validation losses are
    drawn beside their training term (:func:`validation_partner`), not listed here."""
    val_prefixes = tuple(v for _, v in _VALIDATION_PREFIXES)
    cols = [c for c in frame.columns if "loss" in c or c.startswith("dense_")]
    cols = [c for c in cols if _kind_of(c) in (None, "loss", "total")]  # not loss_scale
    cols = [c for c in cols if not c.startswith(val_prefixes)]
    cols = [c for c in cols if not c.endswith(_GLOBAL_AVG_SUFFIX) and frame[c].dtype.kind == "f"]
    total = [c for c in ("loss",) if c in cols]
    return total + [c for c in cols if c not in total]


def _kind_of(column: str) -> str | None:
    """The kind of the term a canonical column holds (None when no term is known)."""
    term = TERMS.get(_STAGE_PREFIX_RE.sub(r"\2", column))
    return term.kind if term is not None else None


def comparable_key(term: str, fam: str) -> str:
    """What must match for two runs' values of ``term`` to be on the same scale."""
    base = _STAGE_PREFIX_RE.sub(r"\2", term)
    t = TERMS.get(base)
    if t is None:
        return fam
    return t.normalisation.get(fam, fam)


def total_loss_column(frame: pd.DataFrame) -> str | None:
    """The total loss column of a canonical frame, or the first loss when none is logged."""
    if "loss" in frame.columns:
        return "loss"
    losses = loss_columns(frame)
    return losses[0] if losses else None
