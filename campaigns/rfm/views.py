"""HTML views of RFM and lifecycle: the dashboard's RFM matrix (from the latest run's
counts) and lifecycle funnel, and a member's RFM section."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from campaigns.rfm import selectors
from members.selectors import member_get
from scrm import charts
from scrm.access import MEMBERS_READ
from scrm.reports import report_value
from scrm.web import page


@page(MEMBERS_READ, whole_tenant=True)
def panel_rfm(request: HttpRequest) -> HttpResponse:
    report = report_value(actor=request.actor, name="rfm")
    stages = report["funnel"]["stages"]
    return render(request, "campaigns/panel_rfm.html", {
        "report": report, "funnel_chart": charts.bars(
            [row["name"] for row in stages], {_("会员数"): [row["count"] for row in stages]},
            horizontal=True) if report["funnel"]["evaluated"] else ""})


@page(MEMBERS_READ)
def member_rfm(request: HttpRequest, member_id: int) -> HttpResponse:
    member = member_get(actor=request.actor, member_id=member_id)
    if member is None:
        raise Http404
    return render(request, "campaigns/_member_rfm.html",
                  {"rfm": selectors.member_rfm(member=member)})
