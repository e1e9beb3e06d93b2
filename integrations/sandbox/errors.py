"""Error codes, their texts, and the two platforms' error envelopes (WECHAT.md §3.8, §4.3)."""

from __future__ import annotations

MP_JSON = "application/json; encoding=utf-8"
WORK_JSON = "application/json; charset=UTF-8"

MP_TEXTS = {
    -1: "system error",
    40001: (
        "invalid credential, access_token is invalid or not latest, could get access_token by "
        "getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r"
    ),
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40030: "invalid refresh_token",
    40032: "invalid openid list size",
    40037: "invalid template_id",
    40053: "invalid action info",
    40066: "invalid url",
    40125: "invalid appsecret",
    40163: "code been used",
    40164: "invalid ip, not in whitelist",
    41001: "access_token missing",
    41002: "appid missing",
    41008: "missing code",
    41009: "missing openid",
    42001: "access_token expired",
    42002: "refresh_token expired",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    44002: "empty post data",
    45001: "remark too long",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit must slower retry next minute",
    45056: "too many tags now, no need to add new",
    45057: "can't delete the tag that has too many fans",
    45058: "can't modify sys tag",
    45059: "user has too many tags",
    45157: "invalid tag name, duplicated",
    45158: "tag name too long",
    45159: "invalid tag id",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
    48006: "forbid to clear quota because of reaching the limit",
    49003: "openid not belong to this appid",
}

WORK_TEXTS = {
    -1: "system busy",
    40001: "invalid credential",
    40003: "invalid userid",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40029: "invalid code",
    40050: "invalid chatid",
    40058: "invalid Parameter",
    40068: "invalid tagid",
    40071: "tag name already exists",
    40096: "invalid external userid",
    40097: "user not resigned",
    40099: "takeover user external contact count reach limit",
    40100: "external contact already in transfer",
    41001: "access_token missing",
    41008: "missing code",
    41050: "invalid welcome code",
    41051: "customer already started chatting",
    42001: "access_token expired",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    47001: "data format error",
    48002: "api forbidden",
    60011: "no privilege to access/modify contact/party/agent",
    60111: "userid not found",
    81017: "request count out of limit, please use owner_filter",
    84061: "not external contact",
    84074: "no external contact privilege",
}


class ApiError(Exception):
    """Raised by endpoint handlers; the core renders it in the platform's envelope."""

    def __init__(self, errcode: int, errmsg: str | None = None, detail: str | None = None):
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg
        self.detail = detail


def error_text(platform: str, errcode: int, errmsg: str | None = None,
               detail: str | None = None) -> str:
    if errmsg is None:
        table = MP_TEXTS if platform == "mp" else WORK_TEXTS
        errmsg = table.get(errcode, "unknown error")
    if detail:
        errmsg = f"{errmsg} {detail}"
    return errmsg
