"""Bulk order ingest: a batch of up to 1,000 orders in a handful of set-based queries.

Each order ends as ``order_ingest`` would have left it had the orders come one by one in
the batch's order: same content hash, same "existing" and "order_conflict" answers, same
buyer resolution, filled profile gaps and timeline events.  How it stays set-based:

- every buyer identity is normalised once, and one query finds those already known;
- orders whose buyers share an identity, or point at the same known member, form a group
  (union-find): a group with no known member becomes one new member, a group with one known
  member is added to that member;
- a group whose identities point at two or more known members needs a merge: it goes
  through ``order_ingest`` order by order, as do a repeat of an order in the batch whose
  first copy failed there, and every order of a guide or store manager (whose view of a
  member can change halfway through a batch).

The batch is one transaction, and batches of one tenant take turns from the buyers' lookup
on (see ``people_creation_lock``; the member import's chunks take the same turns).  A
concurrent request of another kind that inserts the same orders or identities first makes
it fail on a unique constraint (or deadlock); the whole batch is then retried and finds
their rows.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members import signals
from members.identities import Identity, normalize_identity
from members.models import IdentityKind, Member, MemberIdentity, Order, OrderLine, TimelineEvent
from members.rows import rows_insert, rows_update
from members.services.members import (
    _gaps,
    _phone_apply,
    _profile_apply,
    _scope_defaults,
    people_creation_lock,
)
from members.services.numbers import member_numbers_allocate
from members.services.orders import (
    order_conflict_error,
    order_content_hash,
    order_event_data,
    order_ingest,
    store_unknown_error,
)
from members.services.stats import member_stats_refresh
from scrm.access import Actor
from scrm.api.errors import ApplicationError
from scrm.events import events_record
from scrm.models import Store

BULK_ATTEMPTS = 3
RETRYABLE_PGCODES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
BUYER_PROFILE_FIELDS = ("name", "gender", "province", "city")
PHONE_FIELDS = ("phone_encrypted", "phone_hash", "phone_masked")

IdentityKey = tuple[str, str, str]
OrderKey = tuple[str, str]
Result = dict[str, Any]


@dataclass(eq=False)
class _Item:
    """One order of the batch, validated and normalised."""

    index: int
    data: dict[str, Any]
    identities: list[Identity]
    content_hash: str

    @property
    def key(self) -> OrderKey:
        return (self.data["channel"], self.data["order_no"])

    @property
    def store_code(self) -> str:
        return self.data.get("store") or ""

    @property
    def phone(self) -> str | None:
        return next((i.plain for i in self.identities if i.kind == IdentityKind.PHONE), None)

    def profile(self, store: Store | None) -> dict[str, Any]:
        buyer = self.data["buyer"]
        profile = {key: buyer[key] for key in BUYER_PROFILE_FIELDS if key in buyer}
        if store is not None:
            profile.setdefault("store", store)
        return profile


@dataclass(eq=False)
class _Event:
    member: Member
    kind: str
    data: dict[str, Any]
    item: _Item | None = None  # set for order.paid: the order id is known only once inserted


@dataclass
class _Writes:
    """What one attempt of the batch will insert and update."""

    new_members: list[Member] = field(default_factory=list)
    identities: list[tuple[Member, Identity]] = field(default_factory=list)
    dirty: dict[int, tuple[Member, set[str]]] = field(default_factory=dict)
    orders: list[tuple[_Item, Member, Store | None]] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)
    member_updates: list[tuple[Member, list[str]]] = field(default_factory=list)


def order_ingest_bulk(*, actor: Actor, orders: list[tuple[int, dict]]) -> list[Result]:
    """Ingest validated orders (with their index in the request); one result per order.

    A failing order does not stop the others.  See the module docstring for how."""
    results: dict[int, Result] = {}
    items = _items_prepare(orders, results)
    for attempt in range(BULK_ATTEMPTS):
        try:
            with transaction.atomic():
                batch_results = _Batch(actor=actor, items=items).run()
            break
        except (IntegrityError, OperationalError) as exc:
            if attempt == BULK_ATTEMPTS - 1 or not _retryable(exc):
                raise
    results.update(batch_results)
    return [results[index] for index in sorted(results)]


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    return getattr(exc.__cause__, "pgcode", None) in RETRYABLE_PGCODES


def _error(index: int, exc: ApplicationError) -> Result:
    result = {"index": index, "status": "error", "code": exc.code, "message": str(exc.detail)}
    if exc.fields:
        result["errors"] = exc.fields
    return result


def _identities_normalize(
    raw: Iterable[dict], cache: dict[tuple[str, str, str], Identity]
) -> list[Identity]:
    """``normalize_identities``, remembering each value across the batch (repeat buyers)."""
    found: dict[IdentityKey, Identity] = {}
    for item in raw:
        spec = (item.get("kind", ""), item.get("value", ""), item.get("app_id", ""))
        identity = cache.get(spec)
        if identity is None:
            identity = cache[spec] = normalize_identity(*spec)
        found.setdefault(identity.key, identity)
    if not found:
        raise ApplicationError(_("至少需要一个身份标识。"), code="identities_required")
    return list(found.values())


def _items_prepare(orders: list[tuple[int, dict]], results: dict[int, Result]) -> list[_Item]:
    cache: dict[tuple[str, str, str], Identity] = {}
    items = []
    for index, data in sorted(orders, key=lambda pair: pair[0]):
        try:
            identities = _identities_normalize(data["buyer"]["identities"], cache)
        except ApplicationError as exc:
            results[index] = _error(index, exc)
            continue
        content_hash = order_content_hash(data, identities=identities)
        items.append(_Item(index, data, identities, content_hash))
    return items


def _created(item: _Item, order_id: int, member_id: int) -> Result:
    return {"index": item.index, "status": "created", "id": order_id, "member": member_id}


def _existing(item: _Item, order_id: int, member_id: int) -> Result:
    return {"index": item.index, "status": "existing", "id": order_id, "member": member_id}


class _Batch:
    """One attempt at the batch, inside its transaction."""

    def __init__(self, *, actor: Actor, items: list[_Item]) -> None:
        self.actor = actor
        self.items = items
        self.now = timezone.now()
        self.results: dict[int, Result] = {}
        self.stores: dict[str, Store] = {}
        self.to_create: list[_Item] = []
        self.repeats: list[tuple[_Item, _Item]] = []  # (repeat, first copy) in the batch
        self.one_by_one: list[_Item] = []
        self.writes = _Writes()
        self.order_ids: dict[_Item, int] = {}

    def run(self) -> dict[int, Result]:
        if not self.items:
            return {}
        self._classify()
        self._plan()
        self._write()
        for item in sorted(self.one_by_one, key=lambda item: item.index):
            self._ingest_one(item)
        self._repeats_resolve()
        return self.results

    # Which orders are new, known, conflicting, or refer to an unknown store.

    def _classify(self) -> None:
        known = self._orders_known()
        self.stores = self._stores_known()
        claimed: dict[OrderKey, _Item] = {}
        for item in self.items:
            found = known.get(item.key)
            if found is not None:
                order_id, member_id, content_hash = found
                self.results[item.index] = (
                    _existing(item, order_id, member_id)
                    if content_hash == item.content_hash
                    else _error(item.index, order_conflict_error(item.data["order_no"]))
                )
            elif item.key in claimed:
                self.repeats.append((item, claimed[item.key]))
            elif item.store_code and item.store_code not in self.stores:
                self.results[item.index] = _error(item.index, store_unknown_error(item.store_code))
            else:
                claimed[item.key] = item
                self.to_create.append(item)

    def _orders_known(self) -> dict[OrderKey, tuple[int, int, str]]:
        numbers: dict[str, set[str]] = defaultdict(set)
        for item in self.items:
            numbers[item.data["channel"]].add(item.data["order_no"])
        condition = Q()
        for channel, order_nos in sorted(numbers.items()):
            condition |= Q(channel=channel, order_no__in=sorted(order_nos))
        rows = Order.objects.filter(condition).values_list(
            "channel", "order_no", "id", "member_id", "content_hash"
        )
        return {(channel, no): (pk, member_id, h) for channel, no, pk, member_id, h in rows}

    def _stores_known(self) -> dict[str, Store]:
        codes = {item.store_code for item in self.items if item.store_code}
        if not codes:
            return {}
        return {store.code: store for store in Store.objects.filter(code__in=sorted(codes))}

    # Who the buyers are, and what changes for each.

    def _plan(self) -> None:
        if self.actor.guide_id is not None or self.actor.store_id is not None:
            # Guides and store managers see only their own book, and an order that fills a
            # buyer's store can bring them into it halfway through a batch: keep the
            # one-by-one outcome.
            self.one_by_one = list(self.to_create)
            return
        people_creation_lock(self.actor.tenant.pk)
        known = self._identities_known()
        for group in self._groups(known):
            members = {
                known[i.key].pk: known[i.key]
                for item in group
                for i in item.identities
                if i.key in known
            }
            if len(members) > 1:
                self.one_by_one += group
            elif members:
                (member,) = members.values()
                known_keys = {i.key for item in group for i in item.identities if i.key in known}
                self._member_plan(member, group, known_keys=known_keys, is_new=False)
            else:
                member = Member(tenant_id=self.actor.tenant.pk)
                self.writes.new_members.append(member)
                self._member_plan(member, group, known_keys=set(), is_new=True)

    def _identities_known(self) -> dict[IdentityKey, Member]:
        values: dict[tuple[str, str], set[str]] = defaultdict(set)
        for item in self.to_create:
            for identity in item.identities:
                values[(identity.kind, identity.app_id)].add(identity.value)
        if not values:
            return {}
        condition = Q()
        for (kind, app_id), kind_values in sorted(values.items()):
            condition |= Q(kind=kind, app_id=app_id, value__in=sorted(kind_values))
        rows = list(
            MemberIdentity.objects.filter(condition).values_list(
                "kind", "app_id", "value", "member_id"
            )
        )
        # Locked in pk order, as member_stats_refresh and merges lock them: the profile
        # replay then starts from rows no one else changes, and two batches with buyers in
        # common queue instead of deadlocking.  The store comes along: profiles compare it.
        members = {
            member.pk: member
            for member in Member.objects.select_for_update(of=("self",))
            .select_related("store")
            .filter(pk__in={row[3] for row in rows})
            .order_by("pk")
        }
        return {
            (kind, app_id, value): members[member_id] for kind, app_id, value, member_id in rows
        }

    def _groups(self, known: dict[IdentityKey, Member]) -> list[list[_Item]]:
        """Orders that share an identity or a known member, in the batch's order."""
        parent: dict[Any, Any] = {}

        def find(node: Any) -> Any:
            root = parent.setdefault(node, node)
            while root != parent[root]:
                root = parent[root]
            while node != root:  # path compression
                parent[node], node = root, parent[node]
            return root

        def union(first: Any, second: Any) -> None:
            parent[find(first)] = find(second)

        for item in self.to_create:
            anchor = item.identities[0].key
            for identity in item.identities:
                union(identity.key, anchor)
                if identity.key in known:
                    union(("member", known[identity.key].pk), anchor)
        groups: dict[Any, list[_Item]] = defaultdict(list)
        for item in self.to_create:
            groups[find(item.identities[0].key)].append(item)
        return list(groups.values())

    def _member_plan(
        self, member: Member, group: list[_Item], *, known_keys: set[IdentityKey], is_new: bool
    ) -> None:
        """Replay the group's orders on ``member`` as ``order_ingest`` would, one by one."""
        for position, item in enumerate(group):
            store = self.stores.get(item.store_code)
            creating = is_new and position == 0
            if creating:
                _profile_apply(member, _scope_defaults(self.actor, item.profile(store)))
                if item.phone:
                    _phone_apply(member, item.phone)
                self._event(
                    member, TimelineEvent.Kind.CREATED, {"source_channel": member.source_channel}
                )
            for identity in item.identities:
                if identity.key not in known_keys:
                    known_keys.add(identity.key)
                    self.writes.identities.append((member, identity))
                    self._event(
                        member,
                        TimelineEvent.Kind.IDENTITY_ADDED,
                        {
                            "kind": identity.kind,
                            "app_id": identity.app_id,
                            "display": identity.display,
                        },
                    )
            if not creating:
                self._member_update(member, item.phone, item.profile(store), is_new=is_new)
            self.writes.orders.append((item, member, store))
            self.writes.events.append(_Event(member, TimelineEvent.Kind.ORDER_PAID, {}, item))

    def _member_update(
        self, member: Member, phone: str | None, profile: dict[str, Any], *, is_new: bool
    ) -> None:
        dirty: set[str] = set()
        if not member.phone_hash and phone:
            _phone_apply(member, phone)
            dirty.update(PHONE_FIELDS)
        # What an order says about a known buyer only fills gaps (as order_ingest).
        changed = _profile_apply(member, _gaps(member, profile))
        if changed:
            dirty.update([*changed, "updated_at"])
            if "marketing_consent" in changed:
                dirty.add("consent_updated_at")
            values = {f: str(getattr(member, f)) for f in changed if f not in ("store", "guide")}
            self._event(member, TimelineEvent.Kind.UPDATED, {"changed": changed, "values": values})
            self.writes.member_updates.append((member, changed))
        if dirty and not is_new:
            self.writes.dirty.setdefault(member.pk, (member, set()))[1].update(dirty)

    def _event(self, member: Member, kind: str, data: dict[str, Any]) -> None:
        self.writes.events.append(_Event(member, kind, data))

    # The writes: one statement per table.

    def _write(self) -> None:
        writes = self.writes
        numbers = member_numbers_allocate(
            tenant_id=self.actor.tenant.pk, count=len(writes.new_members)
        )
        for member, member_no in zip(writes.new_members, numbers, strict=True):
            member.member_no = member_no
        self._members_insert()
        self._identities_insert()
        self._members_update()
        order_ids = self._orders_insert()
        self._timeline_insert()
        touched = {member.pk for _item, member, _store in writes.orders}
        member_stats_refresh(member_ids=touched)
        self._events_record()
        self._signals_send(order_ids)

    def _events_record(self) -> None:
        """The batch's outbox events, one COPY per type (scrm/events.py)."""
        tenant_id, now = self.actor.tenant.pk, self.now
        events_record(tenant_id=tenant_id, type="member.created", occurred_at=now, payloads=[
            {"member_id": m.pk, "member_no": m.member_no, "source_channel": m.source_channel}
            for m in self.writes.new_members])
        events_record(tenant_id=tenant_id, type="member.updated", occurred_at=now, payloads=[
            {"member_id": m.pk, "changed": changed} for m, changed in self.writes.member_updates])
        events_record(tenant_id=tenant_id, type="order.created", occurred_at=now, payloads=[
            order_event_data(Order(pk=self.order_ids[item], member_id=member.pk,
                                   order_no=item.data["order_no"],
                                   channel=item.data["channel"],
                                   amount_fen=item.data["amount_fen"],
                                   paid_at=item.data["paid_at"]))
            for item, member, _store in self.writes.orders if item in self.order_ids])

    def _members_insert(self) -> None:
        members = self.writes.new_members
        fields = [f.attname for f in Member._meta.concrete_fields if not f.primary_key]
        for member in members:
            member.created_at = member.updated_at = self.now
        rows = [{name: getattr(member, name) for name in fields} for member in members]
        for member, pk in zip(members, rows_insert(Member, rows, now=self.now), strict=True):
            member.pk = pk

    def _identities_insert(self) -> None:
        # In key order, so two batches that add the same identities wait for each other
        # instead of deadlocking.
        pairs = sorted(self.writes.identities, key=lambda pair: pair[1].key)
        rows = [
            {
                "tenant_id": member.tenant_id,
                "member_id": member.pk,
                "kind": identity.kind,
                "app_id": identity.app_id,
                "value": identity.value,
                "display": identity.display,
                "value_encrypted": identity.encrypted,
            }
            for member, identity in pairs
        ]
        rows_insert(MemberIdentity, rows, now=self.now, returning=False)

    def _members_update(self) -> None:
        by_fields: dict[tuple[str, ...], list[Member]] = defaultdict(list)
        for member, fields in self.writes.dirty.values():
            if "updated_at" in fields:
                member.updated_at = self.now
            by_fields[tuple(sorted(fields))].append(member)
        for fields, members in by_fields.items():
            rows_update(Member, sorted(members, key=lambda m: m.pk), fields)

    def _orders_insert(self) -> list[int]:
        tenant_id = self.actor.tenant.pk
        # In the batch's order, so ids follow the request as they would one by one.
        planned = sorted(self.writes.orders, key=lambda plan: plan[0].index)
        rows = [
            {
                "tenant_id": tenant_id,
                "member_id": member.pk,
                "channel": item.data["channel"],
                "order_no": item.data["order_no"],
                "store_id": store.pk if store else None,
                "paid_at": item.data["paid_at"],
                "amount_fen": item.data["amount_fen"],
                "content_hash": item.content_hash,
            }
            for item, member, store in planned
        ]
        order_ids = rows_insert(Order, rows, now=self.now)
        lines = [
            {
                "tenant_id": tenant_id,
                "order_id": order_id,
                "sku": line["sku"],
                "product": line["product"],
                "category": line.get("category", ""),
                "quantity": line["quantity"],
                "price_fen": line["price_fen"],
            }
            for order_id, (item, _member, _store) in zip(order_ids, planned, strict=True)
            for line in item.data["lines"]
        ]
        rows_insert(OrderLine, lines, now=self.now, returning=False)
        for order_id, (item, member, _store) in zip(order_ids, planned, strict=True):
            self.order_ids[item] = order_id
            self.results[item.index] = _created(item, order_id, member.pk)
        return order_ids

    def _timeline_insert(self) -> None:
        rows = []
        for event in self.writes.events:
            occurred_at, data = self.now, event.data
            if event.item is not None:
                order = event.item.data
                occurred_at = order["paid_at"]
                data = {
                    "order_id": self.order_ids[event.item],
                    "order_no": order["order_no"],
                    "channel": order["channel"],
                    "amount_fen": order["amount_fen"],
                }
            rows.append(
                {
                    "tenant_id": event.member.tenant_id,
                    "member_id": event.member.pk,
                    "kind": event.kind,
                    "occurred_at": occurred_at,
                    "data": data,
                    "actor": self.actor.label,
                }
            )
        rows_insert(TimelineEvent, rows, now=self.now, returning=False)

    def _signals_send(self, order_ids: list[int]) -> None:
        tenant_id = self.actor.tenant.pk
        created_ids = [member.pk for member in self.writes.new_members]
        updates = [(member.pk, changed) for member, changed in self.writes.member_updates]

        def send() -> None:
            for member_id in created_ids:
                signals.member_created.send(sender=Member, tenant_id=tenant_id, member_id=member_id)
            for member_id, changed in updates:
                signals.member_updated.send(
                    sender=Member, tenant_id=tenant_id, member_id=member_id, changed=changed
                )
            if order_ids:
                signals.order_paid.send(sender=Order, tenant_id=tenant_id, order_ids=order_ids)

        transaction.on_commit(send)

    # The rare orders that go one by one.

    def _ingest_one(self, item: _Item) -> None:
        try:
            order, created = order_ingest(actor=self.actor, data=item.data)
        except ApplicationError as exc:
            self.results[item.index] = _error(item.index, exc)
            return
        result = _created if created else _existing
        self.results[item.index] = result(item, order.pk, order.member_id)

    def _repeats_resolve(self) -> None:
        """A repeat of an order earlier in the batch: "existing" when the first copy went in
        with the same content, a conflict when with another; one by one when it failed."""
        for repeat, first in self.repeats:
            outcome = self.results[first.index]
            if outcome["status"] == "error":
                self._ingest_one(repeat)
            elif repeat.content_hash == first.content_hash:
                self.results[repeat.index] = _existing(repeat, outcome["id"], outcome["member"])
            else:
                self.results[repeat.index] = _error(
                    repeat.index, order_conflict_error(repeat.data["order_no"])
                )
