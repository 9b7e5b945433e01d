"""The ``MetricLogger`` / ``SmoothedValue`` print format shared by maskrcnn_benchmark and the
torchvision detection references (and the repositories that copied them: DETR, FCOS, ATSS...).

``MetricLogger.__str__`` joins ``f"{name}: {meter}"`` with the delimiter (two spaces, a tab, or a
single space in some forks); a meter prints ``{median:.4f} ({global_avg:.4f})`` by default and a
single number when built with another ``fmt`` (torchvision's ``lr``, ``time``, ``data``)::

    loss: 0.6097 (0.9191)  loss_classifier: 0.1472 (0.3151)  lr: 0.000025  max mem: 4358

Sources: ``maskrcnn_benchmark/utils/metric_logger.py``, ``references/detection/utils.py``.
"""

from __future__ import annotations

import re

from losslens.reading.formats._common import parse_eta, standard_name, to_float
from losslens.reading.formats._textlog import RecordError, split_items

#: ``0.6097 (0.9191)`` (median, global average) or one number.
_METER_RE = re.compile(r"^(?P<value>[^\s()]+)(?:\s*\((?P<avg>[^\s()]+)\))?$")
#: Suffix of the column that holds a meter's global average (its mean since the start).
GLOBAL_AVG_SUFFIX = "_global_avg"


def meter_values(body: str, skip: tuple[str, ...] = ()) -> tuple[dict[str, str], dict[str, float]]:
    """``'eta: 0:17:37  iter: 87940  loss: 0.6 (0.9)  lr: 0.000025'`` -> (raw, values).

    ``raw`` holds the keys named in ``skip`` as printed (``iter``); ``values`` every other key
    under its standard column name (``eta_s``, ``time_s``, ``memory_mb``), a parenthesised
    global average under ``<name>_global_avg``. A value that is not a number raises
    :class:`RecordError`.
    """
    raw: dict[str, str] = {}
    values: dict[str, float] = {}
    for key, text in split_items(body):
        if key in skip:
            raw[key] = text
            continue
        try:
            if key == "eta":
                values["eta_s"] = parse_eta(text)
                continue
            match = _METER_RE.match(text)
            if match is None:
                raise ValueError(f"not a number or 'median (global_avg)': {text!r}")
            name = standard_name(key)
            values[name] = to_float(match["value"])
            if match["avg"] is not None:
                values[name + GLOBAL_AVG_SUFFIX] = to_float(match["avg"])
        except ValueError as err:
            raise RecordError(f"{key}: {err}") from err
    return raw, values
