from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from scrm import charts
from scrm.access import MEMBERS_READ
from scrm.reports import report_value
from scrm.web import page, period_of


@page(MEMBERS_READ)
def panel_members(request: HttpRequest) -> HttpResponse:
    days = period_of(request)
    report = report_value(actor=request.actor, name="members", period=days)
    return render(request, "tags/panel_members.html", {
        "report": report, "period": days,
        "pie": charts.pie([(row["name"], row["members"]) for row in report["channels"]]),
        "growth": charts.lines([day[5:] for day in report["days"]], report["daily"],
                               stack=True),
        "title": _("会员与增长"),
    })
