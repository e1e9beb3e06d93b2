from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReferralsConfig(AppConfig):
    name = "campaigns.referrals"
    label = "referrals"
    verbose_name = _("裂变与抽奖")

    def ready(self) -> None:
        from campaigns.referrals import receivers  # noqa: F401
