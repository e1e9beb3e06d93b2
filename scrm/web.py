"""What the HTML views (operator dashboard, guide H5) share: who may open a page, the chosen
period, briefly cached reports, and how a refused service call reads on a page.

The views are thin like the API's: they check the actor's scopes, call the same services and
selectors, and render."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from scrm.access import Actor
from scrm.api.errors import ApplicationError

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
PAGE_SIZE = 50


def page(scope: str | None = None, *, whole_tenant: bool = False):
    """A page for a signed-in staff member of a tenant, with ``scope`` when given.
    ``whole_tenant``: only for roles that see the whole tenant (not guides or store
    managers, whose pages are cut down to their own customers)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            actor = getattr(request, "actor", None)
            if actor is None:
                return render(request, "scrm/no_tenant.html", status=403)
            if scope is not None and not actor.can(scope):
                raise PermissionDenied(_("当前角色无权访问此页面。"))
            if whole_tenant and not sees_whole_tenant(actor):
                raise PermissionDenied(_("当前角色无权访问此页面。"))
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def sees_whole_tenant(actor: Actor) -> bool:
    return actor.guide_id is None and actor.store_id is None


def period_of(request: HttpRequest) -> int:
    try:
        period = int(request.GET.get("period", DEFAULT_PERIOD))
    except ValueError:
        return DEFAULT_PERIOD
    return period if period in PERIODS else DEFAULT_PERIOD


def error_text(exc: ApplicationError) -> str:
    """An ApplicationError as one line for a page."""
    return str(exc.detail)


def validated(serializer_class, data: dict, *, partial: bool = False) -> dict:
    """Form input checked by the API's own input serializer, so both edges accept exactly
    the same; the first problem becomes an ApplicationError for the page."""
    serializer = serializer_class(data=data, partial=partial)
    if not serializer.is_valid():
        field, errors = next(iter(serializer.errors.items()))
        first = errors[0] if isinstance(errors, list) else errors
        raise ApplicationError(f"{field}: {first}", code="validation_error")
    return dict(serializer.validated_data)


def resolvable(names: list[str], *args) -> list[str]:
    """The URLs of the ``web:`` views among ``names`` that are installed (sections and panels
    of apps that have not landed are left out)."""
    from django.urls import NoReverseMatch, reverse

    urls = []
    for name in names:
        try:
            urls.append(reverse(f"web:{name}", args=args))
        except NoReverseMatch:
            continue
    return urls


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")
