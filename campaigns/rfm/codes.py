"""The eight RFM segments and the six lifecycle stages: codes, Chinese names, and how a
member's scores or order history map onto them."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Segment(models.TextChoices):
    IMPORTANT_VALUE = "important_value", _("重要价值")
    IMPORTANT_DEVELOP = "important_develop", _("重要发展")
    IMPORTANT_KEEP = "important_keep", _("重要保持")
    IMPORTANT_RETAIN = "important_retain", _("重要挽留")
    GENERAL_VALUE = "general_value", _("一般价值")
    GENERAL_DEVELOP = "general_develop", _("一般发展")
    GENERAL_KEEP = "general_keep", _("一般保持")
    GENERAL_RETAIN = "general_retain", _("一般挽留")


# (R high, F high, M high) -> segment: the classic split.
SEGMENT_OF: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): Segment.IMPORTANT_VALUE,
    (True, False, True): Segment.IMPORTANT_DEVELOP,
    (False, True, True): Segment.IMPORTANT_KEEP,
    (False, False, True): Segment.IMPORTANT_RETAIN,
    (True, True, False): Segment.GENERAL_VALUE,
    (True, False, False): Segment.GENERAL_DEVELOP,
    (False, True, False): Segment.GENERAL_KEEP,
    (False, False, False): Segment.GENERAL_RETAIN,
}
NONE = "none"  # no order in the window: no segment (stored as "")
ALL = "all"  # a run's history row of every active member at the run
SEGMENT_NAMES = {str(code): str(label) for code, label in Segment.choices}


class Stage(models.TextChoices):
    PROSPECT = "prospect", _("潜客")
    NEW = "new", _("新客")
    REPEAT = "repeat", _("复购")
    LOYAL = "loyal", _("忠诚")
    DORMANT = "dormant", _("沉睡")
    LOST = "lost", _("流失")


STAGE_NAMES = {str(code): str(label) for code, label in Stage.choices}


def segment_for(r: int, f: int, m: int, *, highs: tuple[int, int, int]) -> str:
    return SEGMENT_OF[(r >= highs[0], f >= highs[1], m >= highs[2])]


def resolve_codes(value, choices: type[models.TextChoices], what: str) -> list[str]:
    """Codes named by ``value``: a code or a Chinese name, or a non-empty list of them.
    Raises ValueError with a message for the user."""
    names = {str(label): str(code) for code, label in choices.choices}
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise ValueError(_("应为%(what)s的编码或中文名，或它们的数组") % {"what": what})
    unknown = [item for item in items if item not in choices.values and item not in names]
    if unknown:
        raise ValueError(_("%(what)s不存在：%(items)s") % {"what": what,
                                                          "items": ", ".join(unknown)})
    return list(dict.fromkeys(names.get(item, item) for item in items))
