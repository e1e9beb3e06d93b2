"""Each tenant's RFM and lifecycle settings: read (made with the defaults on first use) and
changed, with the rules that keep them meaningful."""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from campaigns.rfm.models import LifecycleConfig, RfmConfig
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.audit import audit_record
from scrm.tenancy import require_tenant_id

RFM_FIELDS = ("window_days", "scoring", "r_thresholds", "f_thresholds", "m_thresholds",
              "r_high", "f_high", "m_high")
LIFECYCLE_FIELDS = ("new_days", "loyal_orders", "loyal_spend_fen", "loyal_window_days",
                    "dormant_days", "lost_days")
DIMENSIONS = ("r", "f", "m")
CUTS = 4  # four cut points make five scores
MAX_WINDOW_DAYS = 3650


def _single(model):
    """The tenant's row of a one-per-tenant settings model, created on first use."""
    row = model.objects.first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return model.objects.create(tenant_id=require_tenant_id())
    except IntegrityError:  # created concurrently
        return model.objects.get()


def rfm_config_get() -> RfmConfig:
    return _single(RfmConfig)


def lifecycle_config_get() -> LifecycleConfig:
    return _single(LifecycleConfig)


def _invalid(code: str, field: str, message: str) -> ApplicationError:
    return ApplicationError(message, code=code, fields={field: [message]})


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _thresholds_check(dimension: str, values: Any) -> None:
    field = f"{dimension}_thresholds"
    if not isinstance(values, list) or len(values) != CUTS or not all(map(_is_count, values)):
        raise _invalid("invalid_rfm_thresholds", field,
                       _("%(field)s 应为 4 个非负整数。") % {"field": field})
    if any(low >= high for low, high in zip(values, values[1:], strict=False)):
        raise _invalid("rfm_thresholds_unordered", field,
                       _("%(field)s 必须严格递增：%(values)s") % {"field": field,
                                                                 "values": values})


def rfm_config_validate(config: RfmConfig) -> None:
    """Thresholds (when set, and always in thresholds mode) are four strictly ascending
    non-negative integers; a high score starts at 2 to 5; the window is 1 to 3,650 days."""
    if not 1 <= config.window_days <= MAX_WINDOW_DAYS:
        raise _invalid("invalid_rfm_window", "window_days",
                       _("统计窗口应为 1 到 %(n)s 天。") % {"n": MAX_WINDOW_DAYS})
    if config.scoring not in RfmConfig.Scoring.values:
        raise _invalid("invalid_rfm_scoring", "scoring", _("未知的打分方式。"))
    for dimension in DIMENSIONS:
        values = getattr(config, f"{dimension}_thresholds")
        if values or config.scoring == RfmConfig.Scoring.THRESHOLDS:
            if not values:
                raise _invalid("rfm_thresholds_required", f"{dimension}_thresholds",
                               _("按阈值打分时必须设置 R、F、M 三组阈值。"))
            _thresholds_check(dimension, values)
        high = getattr(config, f"{dimension}_high")
        if not isinstance(high, int) or not 2 <= high <= 5:
            raise _invalid("invalid_rfm_high", f"{dimension}_high",
                           _("高分起点应为 2 到 5。"))


def lifecycle_config_validate(config: LifecycleConfig) -> None:
    """Lost comes after dormant; loyalty needs at least two orders."""
    if config.dormant_days < 1:
        raise _invalid("invalid_lifecycle_config", "dormant_days", _("沉睡天数至少为 1。"))
    if config.lost_days <= config.dormant_days:
        raise _invalid("lifecycle_days_unordered", "lost_days",
                       _("流失天数（%(lost)s）必须大于沉睡天数（%(dormant)s）。") % {
                           "lost": config.lost_days, "dormant": config.dormant_days})
    if config.loyal_orders < 2:
        raise _invalid("invalid_lifecycle_config", "loyal_orders", _("忠诚客订单数至少为 2。"))
    if config.loyal_window_days < 1:
        raise _invalid("invalid_lifecycle_config", "loyal_window_days",
                       _("忠诚窗口至少为 1 天。"))
    if config.loyal_spend_fen < 0:
        raise _invalid("invalid_lifecycle_config", "loyal_spend_fen", _("消费门槛不能为负。"))


def _update(model, fields: tuple[str, ...], validate, action: str, *, actor: Actor,
            changes: dict[str, Any]):
    unknown = set(changes) - set(fields)
    if unknown:
        raise ApplicationError(_("未知字段：%(names)s") % {"names": ", ".join(sorted(unknown))},
                               code="validation_error")
    _single(model)
    row = model.objects.select_for_update().get()
    before = {name: getattr(row, name) for name in changes}
    for name, value in changes.items():
        setattr(row, name, value)
    validate(row)
    row.save()
    audit_record(actor=actor, action=action, target=row,
                 data={"before": before, "after": dict(changes)})
    return row


@transaction.atomic
def rfm_config_update(*, actor: Actor, changes: dict[str, Any]) -> RfmConfig:
    """Change the settings; the next run scores with them (thresholds in the run's
    snapshot)."""
    return _update(RfmConfig, RFM_FIELDS, rfm_config_validate, "rfm.config_update",
                   actor=actor, changes=changes)


@transaction.atomic
def lifecycle_config_update(*, actor: Actor, changes: dict[str, Any]) -> LifecycleConfig:
    return _update(LifecycleConfig, LIFECYCLE_FIELDS, lifecycle_config_validate,
                   "lifecycle.config_update", actor=actor, changes=changes)
