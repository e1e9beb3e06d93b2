"""What each app holds about one member, for the personal-data export (PIPL access right).

The members app cannot import the apps above it, so they register a section here from their
``AppConfig.ready()``: ``personal_data_section("points", points_of_member)``.  A section is a
function of the member that answers JSON-ready data, reading only the current tenant."""

from collections.abc import Callable
from typing import Any

SECTIONS: dict[str, Callable[[Any], Any]] = {}


def personal_data_section(name: str, build: Callable[[Any], Any]) -> None:
    SECTIONS[name] = build


def model_rows(model, member, *, field: str = "member") -> list[dict]:
    """Every column of ``model``'s rows that point at ``member`` through ``field``."""
    return list(model.objects.filter(**{field: member}).order_by("pk").values())


def models_section(*specs: tuple[str, Any, str]) -> Callable[[Any], dict]:
    """A section of ``{name: rows}`` for (name, model, field to the member) triples."""

    def build(member) -> dict:
        return {name: model_rows(model, member, field=field) for name, model, field in specs}

    return build
