"""WeCom: guides (corp members who serve customers), their customers and the relations
between them, customer groups and who is in them.

A full sync is a job in three phases (guides, customers, groups), each page committed with
the job's checkpoint, so a crashed sync resumes where it stopped.  Relations and group
memberships are history: a stint is closed (who ended it, when), never overwritten; a
customer who comes back opens a new one.  Callbacks apply the same writes to one customer or
one group at a time."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from pyroaring import BitMap64

from integrations.models import (
    ContactRelation,
    ExternalContact,
    GroupChat,
    GroupMember,
    LossAlert,
    WeComCorp,
    WeComUser,
)
from integrations.services.callbacks import event_time
from integrations.services.connections import wecom_api
from integrations.services.followers import with_backoff
from integrations.services.systemtags import customer_tag, group_member_tag
from members.identities import normalize_identity
from members.models import IdentityKind, Member, SourceChannel
from members.services import timeline_add
from members.services.people import Record, people_resolve
from scrm.access import Actor
from scrm.jobs import job_create, job_finish, job_progress, job_start
from scrm.models import Job, StaffMembership
from tags.models import MemberTag
from tags.services.tagging import tag_apply_chunk

logger = logging.getLogger(__name__)

JOB_KIND = "wecom_sync"
USERS_PER_CALL = 100


def _moment(seconds: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC) if seconds else None
    except (TypeError, ValueError):
        return None


def _actor(corp: WeComCorp) -> Actor:
    return Actor(tenant=corp.tenant, scopes=frozenset())


# Guides


def guides_sync(*, corp: WeComCorp) -> list[WeComUser]:
    """The corp members with customer contact enabled, mapped to staff by their userid."""
    api = wecom_api(corp)
    userids = with_backoff(api.follow_users)
    staff = dict(StaffMembership.objects.filter(tenant_id=corp.tenant_id,
                                                wecom_userid__in=userids)
                 .values_list("wecom_userid", "pk"))
    now, users = timezone.now(), []
    for userid in userids:
        user, _created = WeComUser.objects.update_or_create(
            corp=corp, userid=userid, defaults={
                "tenant_id": corp.tenant_id, "staff_id": staff.get(userid),
                "is_follow_enabled": True, "is_active": True, "synced_at": now})
        if not user.name:
            name = _user_name(api, userid)
            if name:
                WeComUser.objects.filter(pk=user.pk).update(name=name)
                user.name = name
        users.append(user)
    WeComUser.objects.filter(corp=corp, is_follow_enabled=True).exclude(
        userid__in=userids).update(is_follow_enabled=False, synced_at=now)
    return users


def _user_name(api, userid: str) -> str:
    from integrations.wechat.client import WeChatApiError

    try:
        return str(api.user(userid).get("name", ""))[:64]
    except WeChatApiError:
        return ""


def _user(corp: WeComCorp, userid: str) -> WeComUser:
    user = WeComUser.objects.filter(corp=corp, userid=userid).first()
    if user is not None:
        return user
    staff = StaffMembership.objects.filter(tenant_id=corp.tenant_id,
                                           wecom_userid=userid).first()
    user, _created = WeComUser.objects.get_or_create(
        corp=corp, userid=userid, defaults={"tenant_id": corp.tenant_id, "staff": staff})
    return user


# Customers


def _contact_record(corp: WeComCorp, contact: dict) -> Record:
    identities = [normalize_identity(IdentityKind.WECOM_EXTERNAL_USERID,
                                     contact["external_userid"], corp.corpid)]
    if contact.get("unionid"):
        identities.append(normalize_identity(IdentityKind.WECHAT_UNIONID, contact["unionid"]))
    gender = {1: "male", 2: "female"}.get(contact.get("gender"), "unknown")
    return Record(identities=identities, profile={"name": contact.get("name", ""),
                                                  "gender": gender},
                  first_touch={"channel": SourceChannel.WECOM, "corpid": corp.corpid})


def contacts_write(*, corp: WeComCorp, pairs: list[tuple[dict, dict]],
                   seen: BitMap64 | None = None) -> dict[str, int]:
    """Customers and their relations with guides, from (external_contact, follow_info)
    pairs, in the caller's transaction.  Returns counts."""
    contacts = {c["external_userid"]: c for c, _follow in pairs}
    records = [_contact_record(corp, contact) for contact in contacts.values()]
    resolved = dict(zip(contacts, people_resolve(actor=_actor(corp), records=records,
                                                 source_channel=SourceChannel.WECOM),
                        strict=True))
    rows = _contacts_upsert(corp, contacts, resolved)
    users = {u.userid: u for u in WeComUser.objects.filter(
        corp=corp, userid__in={f["userid"] for _c, f in pairs})}
    opened = 0
    for contact, follow in pairs:
        user = users.get(follow["userid"]) or _user(corp, follow["userid"])
        users[user.userid] = user
        relation, new = _relation_open(rows[contact["external_userid"]], user, follow)
        opened += new
        if seen is not None:
            seen.add(relation.pk)
    _tag(customer_tag(corp), [r.member_no for r in resolved.values()], add=True)
    return {"contacts": len(contacts), "relations": len(pairs), "opened": opened,
            "created": sum(r.created for r in resolved.values())}


def _contacts_upsert(corp: WeComCorp, contacts: dict[str, dict],
                     resolved: dict) -> dict[str, ExternalContact]:
    existing = {c.external_userid: c for c in ExternalContact.objects.filter(
        corp=corp, external_userid__in=list(contacts))}
    now, rows, changed = timezone.now(), {}, []
    for external_userid, data in contacts.items():
        fields = {"member_id": resolved[external_userid].member_id,
                  "name": str(data.get("name", ""))[:64], "type": int(data.get("type") or 1),
                  "gender": int(data.get("gender") or 0),
                  "unionid": str(data.get("unionid", ""))[:64],
                  "corp_name": str(data.get("corp_name", ""))[:128],
                  "avatar": str(data.get("avatar", ""))[:500]}
        row = existing.get(external_userid)
        if row is None:
            row = ExternalContact(tenant_id=corp.tenant_id, corp=corp,
                                  external_userid=external_userid, synced_at=now, **fields)
        elif any(getattr(row, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(row, name, value)
            row.synced_at = now
            changed.append(row)
        rows[external_userid] = row
    ExternalContact.objects.bulk_create([r for r in rows.values() if r.pk is None],
                                        batch_size=1000)
    ExternalContact.objects.bulk_update(changed, ["member_id", "name", "type", "gender",
                                                  "unionid", "corp_name", "avatar",
                                                  "synced_at"], batch_size=1000)
    return rows


def _relation_fields(follow: dict) -> dict[str, Any]:
    tags = follow.get("tag_id")
    if tags is None:
        tags = [tag.get("tag_id") for tag in follow.get("tags", []) if tag.get("tag_id")]
    return {"remark": str(follow.get("remark", ""))[:128],
            "description": str(follow.get("description", ""))[:255],
            "add_way": int(follow.get("add_way") or 0), "state": str(follow.get("state", ""))[:64],
            "corp_tag_ids": sorted(tags)}


def _relation_open(contact: ExternalContact, user: WeComUser,
                   follow: dict) -> tuple[ContactRelation, bool]:
    """The open stint of ``user`` with ``contact``, updated; or a new one."""
    fields = _relation_fields(follow)
    relation = ContactRelation.objects.filter(contact=contact, user=user,
                                              status=ContactRelation.Status.ACTIVE).first()
    now = timezone.now()
    if relation is None:
        relation = ContactRelation.objects.create(
            tenant_id=contact.tenant_id, contact=contact, user=user, member_id=contact.member_id,
            added_at=_moment(follow.get("createtime")) or now, synced_at=now, **fields)
        return relation, True
    if relation.member_id != contact.member_id or any(
            getattr(relation, name) != value for name, value in fields.items()):
        ContactRelation.objects.filter(pk=relation.pk).update(member_id=contact.member_id,
                                                              synced_at=now, **fields)
    return relation, False


def relation_close(*, relation: ContactRelation, status: str, at: datetime) -> bool:
    """End a stint (``status`` says who ended it); False when it was already closed."""
    closed = ContactRelation.objects.filter(pk=relation.pk,
                                            status=ContactRelation.Status.ACTIVE).update(
        status=status, ended_at=at, synced_at=timezone.now())
    if closed:
        _customer_tag_refresh(relation)
    return bool(closed)


def _customer_tag_refresh(relation: ContactRelation) -> None:
    """A member who no longer has any guide of the corp is no longer its customer."""
    corp = relation.contact.corp
    if not ContactRelation.objects.filter(member_id=relation.member_id, contact__corp=corp,
                                          status=ContactRelation.Status.ACTIVE).exists():
        number = Member.objects.filter(pk=relation.member_id).values_list(
            "member_no", flat=True).first()
        if number is not None:
            _tag(customer_tag(corp), [number], add=False)


def _tag(tag, member_nos: list[int], *, add: bool) -> None:
    if member_nos:
        tag_apply_chunk(tag=tag, action="add" if add else "remove", member_nos=member_nos,
                        actor="system", source=MemberTag.Source.SYSTEM, timeline=False)


# Customer events


def contact_event(*, corp: WeComCorp, message: dict[str, Any]) -> bool:
    change = message.get("ChangeType", "")
    userid, external_userid = message.get("UserID", ""), message.get("ExternalUserID", "")
    at = event_time(message)
    if change in ("add_external_contact", "add_half_external_contact",
                  "edit_external_contact"):
        return _contact_added(corp, message, change, userid, external_userid, at)
    if change in ("del_external_contact", "del_follow_user"):
        return _contact_removed(corp, message, change, userid, external_userid, at)
    if change == "transfer_fail":
        contact = ExternalContact.objects.filter(corp=corp,
                                                 external_userid=external_userid).first()
        if contact is not None:
            timeline_add(member=contact.member, kind="wecom.transfer_failed", actor="wecom",
                         occurred_at=at, data={"userid": userid,
                                               "reason": message.get("FailReason", "")})
        return contact is not None
    return False


@transaction.atomic
def _contact_added(corp: WeComCorp, message: dict, change: str, userid: str,
                   external_userid: str, at: datetime) -> bool:
    from integrations.services.channels import channel_added

    detail = with_backoff(lambda: wecom_api(corp).contact(external_userid), retries=3)
    follows = [f for f in detail.get("follow_user", []) if f.get("userid") == userid] or [
        {"userid": userid, "createtime": int(at.timestamp()), "state": message.get("State", "")}]
    counts = contacts_write(corp=corp, pairs=[(detail["external_contact"], f)
                                              for f in follows])
    contact = ExternalContact.objects.get(corp=corp, external_userid=external_userid)
    if change == "edit_external_contact":
        return True
    timeline_add(member=contact.member, kind="wecom.added", actor="wecom", occurred_at=at,
                 data={"userid": userid, "state": message.get("State", ""),
                       "half": change == "add_half_external_contact"})
    code = channel_added(corp=corp, member=contact.member, state=message.get("State", ""),
                         guide_userid=userid, at=at, is_new_member=counts["created"] > 0)
    if code is not None and message.get("WelcomeCode"):
        _welcome(corp, code.code, message["WelcomeCode"])
    return True


def _welcome(corp: WeComCorp, code, welcome_code: str) -> None:
    """The code's welcome message; the welcome code lives 20 s, so failures are logged, not
    retried."""
    from integrations.wechat.client import WeChatApiError

    if not code.welcome_text:
        return
    try:
        wecom_api(corp).welcome_send(welcome_code=welcome_code, text=code.welcome_text)
    except WeChatApiError as exc:
        logger.info("welcome message not sent (%s)", exc)


@transaction.atomic
def _contact_removed(corp: WeComCorp, message: dict, change: str, userid: str,
                     external_userid: str, at: datetime) -> bool:
    relation = ContactRelation.objects.select_related("contact__corp", "user").filter(
        contact__corp=corp, contact__external_userid=external_userid, user__userid=userid,
        status=ContactRelation.Status.ACTIVE).first()
    if relation is None:
        return False
    transferred = message.get("Source") == "DELETE_BY_TRANSFER"
    status = (ContactRelation.Status.TRANSFERRED if transferred
              else ContactRelation.Status.DELETED_BY_GUIDE if change == "del_external_contact"
              else ContactRelation.Status.DELETED_BY_CUSTOMER)
    if not relation_close(relation=relation, status=status, at=at):
        return False
    member = Member.objects.get(pk=relation.member_id)
    timeline_add(member=member, kind=f"wecom.{status}", actor="wecom", occurred_at=at,
                 data={"userid": userid, "guide": relation.user.name or userid})
    if not transferred:
        _loss_alert(relation, member, at, status)
    return True


def _loss_alert(relation: ContactRelation, member: Member, at: datetime, status: str) -> None:
    """流失提醒 for the guide's manager (the store manager of the guide's store)."""
    staff = relation.user.staff
    kind = (LossAlert.Kind.CUSTOMER_DELETED_GUIDE
            if status == ContactRelation.Status.DELETED_BY_CUSTOMER
            else LossAlert.Kind.GUIDE_DELETED_CUSTOMER)
    LossAlert.objects.create(tenant_id=relation.tenant_id, kind=kind, member=member,
                             relation=relation, guide=staff, guide_userid=relation.user.userid,
                             store_id_at_alert=staff.store_id if staff else member.store_id,
                             created_at=at)


# Groups


def group_write(*, corp: WeComCorp, detail: dict, announce: bool = False) -> GroupChat:
    """A customer group and its members now: new stints opened, those who left closed.
    ``announce``: the joins are news (a callback), not the first sight of the group (a full
    sync), and fire the "joined a group" automations."""
    now = timezone.now()
    owner = _user(corp, detail["owner"]) if detail.get("owner") else None
    group, _created = GroupChat.objects.update_or_create(corp=corp, chat_id=detail["chat_id"],
                                                         defaults={
        "tenant_id": corp.tenant_id, "name": str(detail.get("name", ""))[:128], "owner": owner,
        "owner_userid": detail.get("owner", ""), "notice": str(detail.get("notice", "")),
        "member_count": len(detail.get("member_list", [])),
        "created_at_wecom": _moment(detail.get("create_time")), "synced_at": now})
    present = {m["userid"]: m for m in detail.get("member_list", [])}
    open_stints = {m.userid: m for m in GroupMember.objects.filter(group=group,
                                                                   left_at__isnull=True)}
    members = _group_member_ids(corp, [m for uid, m in present.items()
                                       if uid not in open_stints and m.get("type") == 2])
    GroupMember.objects.bulk_create([
        GroupMember(tenant_id=corp.tenant_id, group=group, userid=uid,
                    member_id=members.get(uid), type=int(m.get("type") or 2),
                    name=str(m.get("name", ""))[:64], join_scene=int(m.get("join_scene") or 0),
                    invitor=str((m.get("invitor") or {}).get("userid", ""))[:64],
                    joined_at=_moment(m.get("join_time")) or now)
        for uid, m in present.items() if uid not in open_stints])
    if members and announce:
        from campaigns.services.automation import automation_trigger

        automation_trigger(trigger="joined_group", occurrences=dict.fromkeys(
            members.values(), f"group:{group.chat_id}"))
    left = [stint.pk for uid, stint in open_stints.items() if uid not in present]
    GroupMember.objects.filter(pk__in=left).update(left_at=now)
    _group_tag_refresh(corp, group)
    return group


def _group_member_ids(corp: WeComCorp, externals: list[dict]) -> dict[str, int]:
    """member id per external userid of these group members (new members when unknown)."""
    if not externals:
        return {}
    records = [Record(identities=[normalize_identity(IdentityKind.WECOM_EXTERNAL_USERID,
                                                     m["userid"], corp.corpid)]
                      + ([normalize_identity(IdentityKind.WECHAT_UNIONID, m["unionid"])]
                         if m.get("unionid") else []),
                      profile={"name": m.get("name", "")},
                      first_touch={"channel": SourceChannel.WECOM, "corpid": corp.corpid,
                                   "via": "group"})
               for m in externals]
    resolved = people_resolve(actor=_actor(corp), records=records,
                              source_channel=SourceChannel.WECOM)
    return {m["userid"]: r.member_id for m, r in zip(externals, resolved, strict=True)}


def _group_tag_refresh(corp: WeComCorp, group: GroupChat) -> None:
    """Members in any of the corp's groups carry its group tag."""
    tag = group_member_tag(corp)
    stints = GroupMember.objects.filter(group=group, member__isnull=False)
    inside = set(stints.filter(left_at__isnull=True).values_list("member__member_no",
                                                                 flat=True))
    _tag(tag, sorted(inside), add=True)
    left = set(stints.filter(left_at__isnull=False).values_list("member_id", flat=True))
    still = set(GroupMember.objects.filter(group__corp=corp, member_id__in=left,
                                           left_at__isnull=True).values_list("member_id",
                                                                              flat=True))
    gone = Member.objects.filter(pk__in=left - still).values_list("member_no", flat=True)
    _tag(tag, sorted(gone), add=False)


@transaction.atomic
def group_event(*, corp: WeComCorp, message: dict[str, Any]) -> bool:
    change, chat_id = message.get("ChangeType", ""), message.get("ChatId", "")
    if change == "dismiss":
        group = GroupChat.objects.filter(corp=corp, chat_id=chat_id).first()
        if group is None:
            return False
        at = event_time(message)
        GroupChat.objects.filter(pk=group.pk).update(dismissed_at=at, member_count=0)
        GroupMember.objects.filter(group=group, left_at__isnull=True).update(left_at=at)
        _group_tag_refresh(corp, group)
        return True
    detail = with_backoff(lambda: wecom_api(corp).group_chat(chat_id), retries=3)
    group_write(corp=corp, detail=detail, announce=True)
    return True


# The full sync


def wecom_sync_start(*, actor: Actor, corp: WeComCorp, enqueue: bool = True) -> Job:
    """Queue a full sync (guides, customers, groups); a sync in progress is answered
    instead, a failed one resumes."""
    from integrations.tasks import wecom_sync_task

    latest = Job.objects.filter(kind=JOB_KIND, params__corp_id=corp.pk).order_by("-pk").first()
    if latest is not None and latest.status in (Job.Status.PENDING, Job.Status.RUNNING):
        return latest
    if latest is not None and latest.status == Job.Status.FAILED:
        Job.objects.filter(pk=latest.pk).update(status=Job.Status.PENDING, error="")
        latest.status, job = Job.Status.PENDING, latest
    else:
        job = job_create(actor=actor, kind=JOB_KIND,
                         params={"corp_id": corp.pk, "corpid": corp.corpid})
    if enqueue:
        transaction.on_commit(lambda: wecom_sync_task.delay(actor.tenant.pk, job.pk))
    return job


def wecom_sync_run(*, job: Job, on_progress: Callable[[str, int], None] | None = None) -> None:
    corp = WeComCorp.objects.get(pk=job.params["corp_id"])
    checkpoint = dict(job.checkpoint or {})
    seen = BitMap64.deserialize(bytes(job.payload)) if job.payload else BitMap64()
    job_start(job=job)
    if "guides" not in checkpoint:
        with transaction.atomic():
            userids = [u.userid for u in guides_sync(corp=corp)]
            checkpoint.update(guides=userids, batch=0, cursor="", counts={},
                              started_at=timezone.now().isoformat())
            job_progress(job=job, done=0, checkpoint=checkpoint)
    _customers_phase(corp, job, checkpoint, seen, on_progress)
    _groups_phase(corp, job, checkpoint, on_progress)
    with transaction.atomic():
        lost = _unseen_close(corp, seen, datetime.fromisoformat(checkpoint["started_at"]))
    WeComCorp.objects.filter(pk=corp.pk).update(last_sync_at=timezone.now(), last_error="")
    job_finish(job=job, result={**checkpoint.get("counts", {}), "lost": lost,
                                "guides": len(checkpoint["guides"])})


def _count(checkpoint: dict, counts: dict[str, int]) -> None:
    total = checkpoint.setdefault("counts", {})
    for name, value in counts.items():
        total[name] = total.get(name, 0) + value


def _customers_phase(corp, job, checkpoint, seen, on_progress) -> None:
    api, guides = wecom_api(corp), checkpoint["guides"]
    while checkpoint["batch"] * USERS_PER_CALL < len(guides):
        start = checkpoint["batch"] * USERS_PER_CALL
        userids, cursor = guides[start:start + USERS_PER_CALL], checkpoint["cursor"]
        page = with_backoff(lambda u=userids, c=cursor: api.contacts_by_users(u, c))
        pairs = [(item["external_contact"], item["follow_info"])
                 for item in page.get("external_contact_list", [])]
        with transaction.atomic():
            _count(checkpoint, contacts_write(corp=corp, pairs=pairs, seen=seen))
            checkpoint["cursor"] = page.get("next_cursor", "")
            if not checkpoint["cursor"]:
                checkpoint["batch"] += 1
            Job.objects.filter(pk=job.pk).update(payload=seen.serialize())
            job_progress(job=job, done=job.done + len(pairs), checkpoint=checkpoint)
        if on_progress:
            on_progress("customers", job.done)


def _groups_phase(corp, job, checkpoint, on_progress) -> None:
    api = wecom_api(corp)
    if checkpoint.get("groups_done"):
        return
    while True:
        page = with_backoff(lambda: api.group_chats(checkpoint.get("group_cursor", "")))
        chats = [c["chat_id"] for c in page.get("group_chat_list", [])]
        details = [with_backoff(lambda c=c: api.group_chat(c)) for c in chats]
        with transaction.atomic():
            for detail in details:
                group_write(corp=corp, detail=detail)
            _count(checkpoint, {"groups": len(details)})
            checkpoint["group_cursor"] = page.get("next_cursor", "")
            checkpoint["groups_done"] = not checkpoint["group_cursor"]
            job_progress(job=job, done=job.done + len(details), checkpoint=checkpoint)
        if on_progress:
            on_progress("groups", job.done)
        if checkpoint["groups_done"]:
            return


def _unseen_close(corp: WeComCorp, seen: BitMap64, since: datetime) -> int:
    """Open relations the full sync did not see have ended without an event (missed
    callbacks): closed as lost, unless they were opened since the sync began."""
    open_ids = ContactRelation.objects.filter(contact__corp=corp,
                                              status=ContactRelation.Status.ACTIVE).exclude(
        added_at__gte=since).values_list("pk", flat=True)
    gone = [pk for pk in open_ids.iterator(chunk_size=10_000) if pk not in seen]
    lost = 0
    for relation in ContactRelation.objects.filter(pk__in=gone).select_related("contact__corp"):
        lost += relation_close(relation=relation, status=ContactRelation.Status.LOST,
                               at=timezone.now())
    return lost


# Transfers: in service (在职转接) and after leaving (离职继承)


@transaction.atomic
def customers_transfer(*, actor: Actor, corp: WeComCorp, handover_userid: str,
                       takeover_userid: str, external_userids: list[str],
                       resigned: bool) -> list[dict[str, Any]]:
    """Hand customers from one guide to another (in service, or after they left).  WeCom
    answers per customer; the accepted ones' relations close as transferred, and the new
    guide's relation opens when WeCom reports the add."""
    from integrations.wechat.client import WeChatApiError
    from scrm.api.errors import ApplicationError
    from scrm.audit import audit_record

    results: list[dict[str, Any]] = []
    for start in range(0, len(external_userids), 100):
        chunk = external_userids[start:start + 100]
        try:
            results += wecom_api(corp).transfer(handover=handover_userid,
                                                takeover=takeover_userid,
                                                external_userids=chunk, resigned=resigned)
        except WeChatApiError as exc:
            raise ApplicationError(str(exc), code="wechat_error", status_code=502) from exc
    accepted = [r["external_userid"] for r in results if int(r.get("errcode", 0)) == 0]
    now = timezone.now()
    for relation in ContactRelation.objects.select_related("contact__corp").filter(
            contact__corp=corp, contact__external_userid__in=accepted,
            user__userid=handover_userid, status=ContactRelation.Status.ACTIVE):
        relation_close(relation=relation, status=ContactRelation.Status.TRANSFERRED, at=now)
    audit_record(actor=actor, action="wecom.transfer", data={
        "corpid": corp.corpid, "from": handover_userid, "to": takeover_userid,
        "resigned": resigned, "requested": len(external_userids), "accepted": len(accepted)})
    return results
