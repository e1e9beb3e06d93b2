from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TagsConfig(AppConfig):
    name = "tags"
    verbose_name = _("标签与人群")

    def ready(self) -> None:
        from tags import privacy, receivers, reports  # noqa: F401

        privacy.register()
        reports.register()
