"""The integrations app's part of a member's personal-data export and erasure: OA follower
rows and WeCom contacts (with their relations) are exported, and deleted on erasure, so a
later follow or contact event makes a new member instead of finding the erased one."""

from django.dispatch import receiver

from integrations.models.wechat import Follower
from integrations.models.wecom import ContactRelation, ExternalContact
from members import signals
from members.privacy import models_section, personal_data_section


@receiver(signals.member_erasing, dispatch_uid="integrations.privacy.erase")
def erase_member_contacts(sender, tenant_id: int, member_ids: list[int], removed: dict,
                          **kwargs) -> None:
    removed["followers"] = Follower.objects.filter(member_id__in=member_ids).delete()[0]
    ContactRelation.objects.filter(member_id__in=member_ids).delete()
    removed["wecom_contacts"] = ExternalContact.objects.filter(
        member_id__in=member_ids).delete()[0]


def register() -> None:
    personal_data_section("wechat", models_section(
        ("followers", Follower, "member"), ("wecom_contacts", ExternalContact, "member"),
        ("wecom_relations", ContactRelation, "member")))
