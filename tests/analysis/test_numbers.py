"""The one way a value from a log is written: tables, findings, pages, ``watch``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from losslens.analysis.diagnostics._base import fmt
from losslens.analysis.numbers import number
from losslens.showing.html_page import table


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.123456, "0.1235"),
        (0.00012345678, "0.0001235"),
        (2.5e-05, "2.5e-05"),
        (1.5, "1.5"),
        (-0.0, "0"),
        (3, "3"),
        (np.int64(7), "7"),
        (np.float32(0.1), "0.1"),
        (12000.0, "12000"),  # a whole value in full, not 1.2e+04
        (123456.0, "123456"),
        (1e9, "1e+09"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        (float("nan"), "nan"),
        (None, "-"),
        (pd.NA, "-"),
        ("1.50", "1.50"),  # a string from a log is shown as it is, never parsed
        ("a[b]", "a[b]"),
        (True, "True"),
    ],
)
def test_number(value: object, text: str) -> None:
    assert number(value) == text


def test_missing_and_nan_spellings() -> None:
    assert number(None, missing="nan") == "nan"
    assert number(pd.NA, missing="nan") == "nan"
    assert number(float("nan"), nan="-") == "-"
    assert number(None, nan="-") == "-"


def test_findings_evidence_writes_missing_as_nan() -> None:
    assert [fmt(v) for v in (None, pd.NA, float("nan"), 0.45678, 12000.0)] == [
        "nan",
        "nan",
        "nan",
        "0.4568",
        "12000",
    ]


def test_html_table_cells() -> None:
    frame = pd.DataFrame({"term": ["loss"], "last": [12000.0], "first": [0.123456]})
    html = table(frame)
    assert '<td class="num">12000</td><td class="num">0.1235</td>' in html
