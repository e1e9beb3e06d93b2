from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from campaigns.referrals import views as referrals
from integrations.wechat import oauth, webhooks
from scrm import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("switch-tenant/", views.tenant_switch, name="tenant-switch"),
    path("api/v1/", include(("scrm.api.urls", "api"), namespace="api")),
    path("wechat/mp/<str:appid>/callback/", webhooks.oa_callback, name="wechat-oa-callback"),
    path("wechat/work/<str:corpid>/callback/", webhooks.wecom_callback,
         name="wechat-wecom-callback"),
    path("h5/<str:appid>/member/", oauth.member_page, name="h5-member"),
    path("h5/<str:appid>/oauth/callback/", oauth.member_oauth_callback,
         name="h5-oauth-callback"),
    path("r/<str:code>/", referrals.invite_landing, name="referral-invite"),  # 裂变 invite link
    path("guide/login/wecom/<str:corpid>/", oauth.guide_login, name="guide-login-wecom"),
    path("guide/login/wecom/<str:corpid>/callback/", oauth.guide_oauth_callback,
         name="guide-oauth-callback"),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        # The split view serves its start-up script as a file: the CSP allows no inline ones.
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", permission_classes=[], authentication_classes=[]
        ),
        name="api-docs",
    ),
    path("", include("scrm.web_urls")),
]
handler404 = "scrm.api.errors.page_not_found"
