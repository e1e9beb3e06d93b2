from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from scrm import access
from scrm.web import PERIODS, page, period_of, sees_whole_tenant


class LoginView(auth_views.LoginView):
    """Staff sign in with their login (e-mail) and password; guides have a phone-sized
    variant that also links the WeCom sign-in of their brand (``?corp=<corpid>``)."""

    template_name = "scrm/login.html"
    redirect_authenticated_user = True
    guide = False

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        corpid = self.request.GET.get("corp", "")
        context["guide"] = self.guide
        context["wecom_corps"] = [{"corpid": corpid, "name": corpid}] if (
            self.guide and corpid.isalnum()) else []
        return context

    def get_default_redirect_url(self):
        return "/guide/" if self.guide else super().get_default_redirect_url()


def home(request: HttpRequest) -> HttpResponse:
    """Guides land on their phone view, everyone else on the dashboard."""
    if not request.user.is_authenticated:
        return redirect("web:login")
    actor = getattr(request, "actor", None)
    if actor is None:
        return render(request, "scrm/no_tenant.html", status=403)
    if actor.guide_id is not None:
        return redirect("web:guide")
    return redirect("web:dashboard")


# (URL name, scope, whole tenant only): the panels of the dashboard, each served by the app
# that owns its data; panels of apps that are not installed are left out.
PANELS = (
    ("panel-members", access.MEMBERS_READ, False),
    ("panel-channels", access.INTEGRATIONS_READ, True),
    ("panel-loyalty", access.POINTS_READ, True),
    ("panel-rfm", access.MEMBERS_READ, True),
    ("panel-campaigns", access.CAMPAIGNS_READ, True),
)


@page(access.MEMBERS_READ)
def dashboard(request: HttpRequest) -> HttpResponse:
    """The frame; each panel loads on its own (``hx-get``), from the app that owns it."""
    actor, period = request.actor, period_of(request)
    panels = []
    for name, scope, whole in PANELS:
        if not actor.can(scope) or (whole and not sees_whole_tenant(actor)):
            continue
        try:
            panels.append(f"{reverse(f'web:{name}')}?period={period}")
        except NoReverseMatch:
            continue
    return render(request, "scrm/dashboard.html", {"period": period, "periods": PERIODS,
                                                   "panels": panels})
