"""The errors ``reference_model`` raises on bad input, one class per kind.

Callers catch :class:`ReferenceModelError` and show its message (one sentence naming the bad
value and what was expected); the subclasses say which input was bad. Each also keeps the
builtin base it had before (``ValueError``/``RuntimeError``) so older ``except`` clauses hold.
"""

from __future__ import annotations


class ReferenceModelError(Exception):
    """Bad input to the reference model or its engine; the message says what was expected."""


class SettingsError(ReferenceModelError, ValueError):
    """A run setting or option with a value the reference cannot use (named in the message)."""


class DataError(ReferenceModelError):
    """A dataset that is missing, malformed or unsafe to unpack."""


class CheckpointError(ReferenceModelError, ValueError):
    """A weights or training checkpoint file that is missing, unreadable, unsafe to load or
    does not fit the model; the message names the file and what was expected."""
