from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "points"
    verbose_name = _("积分")

    def ready(self) -> None:
        from points import audience, privacy, receivers, reports  # noqa: F401

        audience.register()
        privacy.register()
        reports.register()
