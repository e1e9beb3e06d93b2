from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RfmConfig(AppConfig):
    name = "campaigns.rfm"
    label = "rfm"
    verbose_name = _("RFM 与生命周期")

    def ready(self) -> None:
        from campaigns.rfm import audience, receivers, reports  # noqa: F401

        audience.register()
        reports.register()
