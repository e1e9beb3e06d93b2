from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScrmConfig(AppConfig):
    name = "scrm"
    verbose_name = _("平台")
