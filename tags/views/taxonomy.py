import json

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scrm.access import TAGS_MANAGE
from scrm.api.errors import ApplicationError
from scrm.web import error_text, page, validated
from tags.api.serializers import TagGroupInput, TagInput
from tags.models import Tag, TagGroup
from tags.services import taxonomy
from tags.views.segments import builder_context

RULE_LEAVES = ("orders", "identity")


@page(TAGS_MANAGE)
def tag_index(request: HttpRequest) -> HttpResponse:
    groups = list(TagGroup.objects.order_by("sort_order", "id").prefetch_related("tags"))
    return render(request, "tags/taxonomy.html", {"groups": groups, "kinds": Tag.Kind.choices,
                                                  "targets": Tag.Target.choices})


@require_POST
@page(TAGS_MANAGE)
def tag_group_create(request: HttpRequest) -> HttpResponse:
    try:
        data = validated(TagGroupInput, {key: value for key, value in request.POST.items()
                                      if key in ("name", "description", "color") and value})
        taxonomy.tag_group_save(actor=request.actor, **data)
        messages.success(request, _("标签组已创建。"))
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    return redirect("web:tags")


def _rule(request: HttpRequest):
    text = request.POST.get("expression", "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApplicationError(_("规则不是合法的 JSON。"), code="invalid_rule") from exc


@page(TAGS_MANAGE)
def tag_edit(request: HttpRequest, tag_id: int | None = None) -> HttpResponse:
    tag = Tag.objects.select_related("group").filter(pk=tag_id).first() if tag_id else None
    if tag_id and tag is None:
        raise Http404
    error, rule = "", tag.rule if tag else None
    if request.method == "POST":
        try:
            rule = _rule(request)
            values = {key: request.POST.get(key, "") for key in ("group", "name", "description",
                                                                 "kind", "target")}
            data = validated(TagInput, {**{k: v for k, v in values.items() if v},
                                     "rule": rule if values["kind"] == Tag.Kind.RULE else None},
                          partial=tag is not None)
            group = TagGroup.objects.filter(pk=data.pop("group", tag.group_id if tag else 0)
                                            ).first()
            if group is None:
                raise ApplicationError(_("请选择标签组。"), code="validation_error")
            tag = taxonomy.tag_save(actor=request.actor, tag=tag, group=group, **data)
            messages.success(request, _("标签已保存。"))
            return redirect("web:tags-edit", tag_id=tag.pk)
        except ApplicationError as exc:
            error = error_text(exc)
    return render(request, "tags/tag_edit.html", {
        "tag": tag, "error": error, "groups": TagGroup.objects.order_by("sort_order", "id"),
        "kinds": [(code, label) for code, label in Tag.Kind.choices
                  if code in (Tag.Kind.MANUAL, Tag.Kind.RULE)],
        "targets": Tag.Target.choices, "count_url": "web:tags-rule-preview",
        **builder_context(rule)})
