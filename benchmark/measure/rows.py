"""The figures every measurement returns, rows (name, value, unit), and how they are shown: a table under a line
saying what was measured where, or JSON."""

from __future__ import annotations

import json
import math

from rich.console import Console
from rich.table import Table

Row = tuple[str, float, str]


def print_rows(rows: list[Row], as_json: bool = False, setting: str | None = None) -> None:
    """A table under the one-line `setting` (what was measured where), or JSON {"setting", "figures"}: figures
    are only comparable on the same device, so the JSON says which. A figure that could not be measured (NaN) is
    null in JSON and "-" in the table."""
    if as_json:
        figures = [{"name": n, "value": v if math.isfinite(v) else None, "unit": u} for n, v, u in rows]
        print(json.dumps({"setting": setting, "figures": figures}, indent=2))
        return
    if setting:
        print(setting)
    table = Table("figure", "value", "unit")
    for name, value, unit in rows:
        table.add_row(name, f"{value:,.3f}".rstrip("0").rstrip(".") if math.isfinite(value) else "-", unit)
    Console().print(table)
