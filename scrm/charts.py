"""ECharts options built on the server, so a page's data and its chart come from one place
(the template shows the same numbers as a table)."""

import json
from typing import Any

COLORS = ["#1f6feb", "#2e9d57", "#d48806", "#8e44ad", "#d4380d", "#13a8a8", "#6c7a89",
          "#eb2f96", "#a0d911", "#2f54eb"]
BASE: dict[str, Any] = {"color": COLORS, "tooltip": {"trigger": "axis"},
                        "grid": {"left": 48, "right": 16, "top": 36, "bottom": 28}}


def _dump(option: dict[str, Any]) -> str:
    return json.dumps({**BASE, **option}, ensure_ascii=False, default=str)


def lines(categories: list[str], series: dict[str, list[int]], *, stack: bool = False) -> str:
    return _dump({
        "legend": {"top": 0, "type": "scroll"},
        "xAxis": {"type": "category", "data": categories, "boundaryGap": False},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"name": name, "type": "line", "data": values, "showSymbol": False,
                    "smooth": True, **({"stack": "all", "areaStyle": {}} if stack else {})}
                   for name, values in series.items()],
    })


def bars(categories: list[str], series: dict[str, list[int]], *,
         horizontal: bool = False) -> str:
    category_axis = {"type": "category", "data": categories}
    value_axis = {"type": "value", "minInterval": 1}
    return _dump({
        "legend": {"top": 0, "type": "scroll"} if len(series) > 1 else {"show": False},
        "xAxis": value_axis if horizontal else category_axis,
        "yAxis": category_axis if horizontal else value_axis,
        "grid": {"left": 110 if horizontal else 48, "right": 16, "top": 30, "bottom": 28},
        "series": [{"name": name, "type": "bar", "data": values, "barMaxWidth": 28,
                    "label": {"show": horizontal, "position": "right"}}
                   for name, values in series.items()],
    })


def pie(items: list[tuple[str, int]]) -> str:
    return _dump({
        "tooltip": {"trigger": "item"},
        "legend": {"bottom": 0, "type": "scroll"},
        "series": [{"type": "pie", "radius": ["40%", "68%"], "top": -20,
                    "data": [{"name": name, "value": value} for name, value in items]}],
    })

