from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("微信与企业微信")

    def ready(self) -> None:
        from integrations import audience, campaign_channels, privacy, referral_qr, reports

        audience.register()
        campaign_channels.register()
        privacy.register()
        referral_qr.register()  # invite QR codes of referral campaigns (裂变)
        reports.register()
