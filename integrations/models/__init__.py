"""WeChat and WeCom data: connections, OA followers, WeCom guides, customers and groups,
channel codes, callbacks, loss alerts and outbound messages."""

from integrations.models.callbacks import CallbackEvent, LossAlert
from integrations.models.channels import ChannelCode, ChannelEvent
from integrations.models.connections import OAApp, WeComCorp
from integrations.models.messages import MassMessage, MassMessageRecipient, TemplateMessage
from integrations.models.wechat import Follower
from integrations.models.wecom import (
    ContactRelation,
    ExternalContact,
    GroupChat,
    GroupMember,
    WeComUser,
)

__all__ = [
    "CallbackEvent",
    "ChannelCode",
    "ChannelEvent",
    "ContactRelation",
    "ExternalContact",
    "Follower",
    "GroupChat",
    "GroupMember",
    "LossAlert",
    "MassMessage",
    "MassMessageRecipient",
    "OAApp",
    "TemplateMessage",
    "WeComCorp",
    "WeComUser",
]
