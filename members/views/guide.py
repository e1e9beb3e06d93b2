"""The shopping guide's phone view (H5): my customers with search and quick filters, a
customer's profile with one-tap tagging and notes, today's tasks, my performance."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from members import reports
from members.views.operator import member_context, visible_member
from scrm.access import MEMBERS_READ
from scrm.web import PERIODS, page, period_of, resolvable

LIST_SHOWN = 100
TASKS_SHOWN = 10
# Task lists served by the apps that own them (new WeCom contacts, coupons to send).
TASK_SECTIONS = ["guide-task-contacts", "guide-task-coupons"]
PROFILE_SECTIONS = ["guide-member-tags", "member-coupons", "member-points"]


@page(MEMBERS_READ)
def guide_home(request: HttpRequest) -> HttpResponse:
    quick = request.GET.get("quick", "")
    quick = quick if quick in reports.QUICK_FILTERS else ""
    search = request.GET.get("q", "").strip()[:64]
    found = reports.customers(actor=request.actor, quick=quick, search=search)
    context = {"customers": list(found[:LIST_SHOWN]), "quick": quick, "q": search,
               "tab": "customers"}
    if request.htmx and request.htmx.target == "customer-list":
        return render(request, "members/guide/_customers.html", context)
    return render(request, "members/guide/home.html", context)


@page(MEMBERS_READ)
def guide_customer(request: HttpRequest, member_id: int) -> HttpResponse:
    member = visible_member(request, member_id)
    context = member_context(request, member)
    context.update({"tab": "customers", "note_from": "guide",
                    "sections": resolvable(PROFILE_SECTIONS, member.pk)})
    return render(request, "members/guide/customer.html", context)


@page(MEMBERS_READ)
def guide_tasks(request: HttpRequest) -> HttpResponse:
    actor = request.actor
    return render(request, "members/guide/tasks.html", {
        "tab": "tasks",
        "birthdays": list(reports.customers(actor=actor, quick="birthday")[:TASKS_SHOWN]),
        "dormant": list(reports.customers(actor=actor, quick="dormant")[:TASKS_SHOWN]),
        "sections": resolvable(TASK_SECTIONS),
    })


@page(MEMBERS_READ)
def guide_performance(request: HttpRequest) -> HttpResponse:
    if request.actor.guide_id is None:
        raise PermissionDenied(_("业绩页面只对导购开放。"))
    period = period_of(request)
    return render(request, "members/guide/performance.html", {
        "tab": "performance", "period": period, "periods": PERIODS,
        "performance": reports.guide_performance(actor=request.actor, days=period)})
