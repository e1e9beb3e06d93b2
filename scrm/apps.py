from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScrmConfig(AppConfig):
    name = "scrm"
    verbose_name = _("平台")

    def ready(self) -> None:
        from scrm import auth_audit, lockout, two_factor  # noqa: F401
