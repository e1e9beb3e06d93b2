"""The OpenAPI schema's error answers: every operation documents the errors any endpoint can
give (scrm/api/errors.py shapes them all alike), so views declare only their successes and
the errors particular to them."""

from django.utils.translation import gettext_lazy as _

ERROR = {
    "type": "object",
    "description": "Every error answer.",
    "properties": {
        "code": {"type": "string", "description": "Stable, for programs: validation_error, "
                                                  "not_found, rate_limited…"},
        "message": {"type": "string", "description": "For people, in the request's language "
                                                     "(Accept-Language, zh-Hans by default)."},
        "errors": {"type": "object", "additionalProperties": True,
                   "description": "Bad input: the messages of each field."},
    },
    "required": ["code", "message"],
}
RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds until a retry can pass."}
ANY = (("401", _("未认证或 API 密钥无效。")), ("403", _("无权执行此操作。")),
       ("404", _("不存在，或属于其他租户。")), ("429", _("请求过于频繁。")))
WRITES = (("400", _("请求数据有误。")), ("409", _("与当前状态冲突（例如重复、已撤销）。")),
          ("413", _("请求体过大。")))
READS = (("400", _("查询参数有误。")),)


def error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the shared error answers on every operation,
    leaving alone any an operation declares itself."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            errors = ANY + (READS if method in ("get", "head") else WRITES)
            for status, description in errors:
                answer = {"description": str(description), "content": reference}
                if status == "429":
                    answer["headers"] = {"Retry-After": RETRY_AFTER}
                operation["responses"].setdefault(status, answer)
    return result
