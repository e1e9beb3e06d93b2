"""The demo tenant's manual tags (what a guide taps on a customer) and a saved segment."""

from django.db import transaction

from scrm.access import ALL_SCOPES, Actor
from scrm.models import Tenant
from tags.services.segments import segment_count, segment_save
from tags.services.taxonomy import tag_group_save, tag_save

INTERESTS = ("护肤达人", "彩妆爱好者", "敏感肌", "抗老需求", "价格敏感", "高端偏好",
             "爱参加活动", "香氛控")


@transaction.atomic
def tags_demo_seed(*, tenant: Tenant) -> None:
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
    group = tag_group_save(actor=actor, name="兴趣偏好", description="导购手工打的标签",
                           color="#eb2f96")
    for name in INTERESTS:
        tag_save(actor=actor, group=group, name=name)
    segment = segment_save(actor=actor, name="上海高消费会员", description="演示人群",
                           expression={"all": [
                               {"field": "city", "op": "eq", "value": "上海"},
                               {"field": "total_spent_fen", "op": "gte", "value": 100000}]})
    segment_count(segment=segment)
