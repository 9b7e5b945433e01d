"""``losslens explain [TERM]``: the term catalogue in the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from losslens.cli._common import cli_errors, console, lit

if TYPE_CHECKING:
    from losslens.analysis._term_table import HealthyRange
    from losslens.analysis.terms import Term


@cli_errors
def explain(
    term: Annotated[
        str | None,
        typer.Argument(
            help="A term: canonical (loss_rpn_bbox), short (rpn.reg) or any framework's name (loss_objectness)."
        ),
    ] = None,
) -> None:
    """What a loss term measures, each framework's name and normalisation, what odd values mean."""
    from losslens.analysis.terms import TERMS, lookup, other_meanings

    if term is None:
        table = Table(title="terms (losslens explain TERM for details)", title_justify="left")
        for col in ("term", "short", "what", "names elsewhere"):
            table.add_column(col, overflow="fold")
        for t in TERMS.values():
            others = sorted({n for names in t.names.values() for n in names if n != t.name})
            table.add_row(lit(t.name), lit(t.short), lit(t.title), lit(", ".join(others)))
        console.print(table)
        return
    found = lookup(term)
    _render(found.term, term, found.note)
    for other in other_meanings(term):
        console.print(
            f"In a single-stage detector (no RPN) {term} means {other.name}: {other.title}; "
            f"see losslens explain {other.name}.",
            markup=False,
        )


def _render(t: Term, asked: str, note: str) -> None:
    from losslens.reading.formats import FAMILIES

    asked_text = f"{asked}: {note}" if note else asked
    console.rule(
        f"[bold]{lit(t.name)}[/bold]: {lit(t.title)}"
        + (f"  (you asked for {lit(asked_text)})" if asked != t.name else "")
    )
    for label, text in (("measures", t.measures), ("where", t.where), ("healthy curve", t.healthy)):
        console.print(f"[bold]{label}:[/bold] {lit(text)}")
    table = Table(title="per framework", title_justify="left")
    for col in ("framework", "logged as", "loss and normalisation", "smoothing before printing"):
        table.add_column(col, overflow="fold")
    titles = {name: fam.title for name, fam in FAMILIES.items()}
    for fam, title in titles.items():
        names = t.names.get(fam)
        if not names:
            continue
        table.add_row(
            lit(title),
            lit(", ".join(names)),
            lit(t.normalisation.get(fam, "-")),
            lit(FAMILIES[fam].smoothing),
        )
    console.print(table)
    _render_ranges(t.ranges, t.unit, titles)
    meanings = Table(title="when it looks odd", title_justify="left")
    meanings.add_column("value")
    meanings.add_column("usually means", overflow="fold")
    for key, text in t.meanings.items():
        meanings.add_row(lit(key), lit(text))
    console.print(meanings)


def _render_ranges(ranges: tuple[HealthyRange, ...], unit: str, titles: dict[str, str]) -> None:
    if not ranges:
        console.print(
            "[bold]healthy range:[/bold] none known (no healthy corpus run and no reference run "
            "logs it)"
        )
        return
    table = Table(title="healthy range (5th-95th percentile once settled)", title_justify="left")
    for col in ("framework", "logged as", "range", "source"):
        table.add_column(col, overflow="fold")
    for r in ranges:
        table.add_row(
            lit(titles.get(r.family, r.family)),
            lit(r.column),
            lit(f"{r.low:g} to {r.high:g}{unit}"),
            lit(r.source),
        )
    console.print(table)
