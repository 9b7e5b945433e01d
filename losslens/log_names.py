"""How log files are named: the one list of log suffixes, and names that say nothing of the run.

Imports nothing, so that the CLI can tell a log argument from a term name without pandas.
"""

from __future__ import annotations

#: The suffixes of log files: stripped from display names, sniffed in a directory walk (file
#: names that are logs whatever their suffix: :data:`losslens.reading.formats.LOG_NAMES`).
LOG_SUFFIXES = (".log", ".json", ".jsonl", ".txt", ".csv", ".gz")
#: File names that say nothing about the run: the run is named after its folder.
GENERIC_STEMS = {
    "log",
    "results",
    "train_log",
    "metrics",
    "scalars",
    "diagnostics",
    "log.txt",
    "metrics.json",
    "scalars.json",
}
