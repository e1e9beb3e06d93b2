"""Message channels campaigns and automations send through.  They live in higher apps (the
WeChat integration provides the OA template message and the WeCom mass message) and register
here at start-up, so this app never imports them."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from members.models import Member


@dataclass(frozen=True)
class Channel:
    """``send(member, params, key)`` sends to one member, once per ``key`` (a retry with the
    same key sends nothing twice) and returns a short status for the delivery record;
    ``send_many(members, params, key_prefix)`` sends to several at once (a WeCom mass
    message is one task for many customers); ``validate(params)`` raises ValueError with a
    message for the operator."""

    name: str
    send: Callable[[Member, dict[str, Any], str], str] | None = None
    send_many: Callable[[list[Member], dict[str, Any], str], dict[int, str]] | None = None
    validate: Callable[[dict[str, Any]], None] | None = None


CHANNELS: dict[str, Channel] = {}


def channel_register(channel: Channel) -> None:
    CHANNELS[channel.name] = channel


def channel_get(name: str) -> Channel | None:
    return CHANNELS.get(name)
