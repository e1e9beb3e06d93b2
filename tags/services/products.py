"""Products and their tags, and people-goods matching (人货匹配).

A member's preference for a product tag is what they bought carrying it, recent purchases
counting more: the sum over their paid (or partly refunded) order lines whose SKU's product
carries the tag of ``quantity × 0.5 ** (days since paid / 180)``.  A product's score for a
member is the sum of the member's preferences over the product's tags; recommendations rank
products by it, and a product's audience ranks members by it."""

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    FloatField,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext as _
from pyroaring import BitMap

from members.models import Member, Order, OrderLine
from scrm.access import Actor
from scrm.api.errors import ApplicationError, Conflict
from scrm.jobs import job_create, job_finish, job_progress, job_start
from scrm.models import Job, Tenant
from scrm.tenancy import require_tenant_id
from tags.models import MemberTag, Product, ProductTag, Segment, Tag, TagGroup
from tags.services.segments import segment_count, segment_save
from tags.services.tagging import ADD, CHUNK, REMOVE, tag_apply_chunk
from tags.services.taxonomy import tag_group_save, tag_save

COUNTED_STATUSES = (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED)
HALF_LIFE_DAYS = 180
PRODUCT_FIELDS = ("name", "category", "price_fen", "is_active")
MATCHING_GROUP = "人货匹配"
AUDIENCE_SOURCE = "product_audience"  # Tag.external_source of a product's audience tag
AUDIENCE_JOB = "product_audience"
AUDIENCE_MAX = 100_000
AUDIENCE_TOP = 20
# A job still pending or running after this long is taken for dead (the task's hard limit is
# about an hour) and no longer blocks a new one for the same product.
AUDIENCE_JOB_STALE = dt.timedelta(hours=2)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


# ---- products ----------------------------------------------------------------------------

def product_list(*, filters: dict | None = None) -> QuerySet[Product]:
    filters = filters or {}
    products = Product.objects.prefetch_related(Prefetch(
        "product_tags", queryset=ProductTag.objects.select_related("tag__group").order_by("id")))
    if filters.get("q"):
        products = products.filter(Q(name__icontains=filters["q"])
                                   | Q(sku__icontains=filters["q"]))
    if filters.get("category"):
        products = products.filter(category=filters["category"])
    if filters.get("tag"):
        products = products.filter(product_tags__tag_id=filters["tag"])
    return products


def _product_save(product: Product) -> Product:
    try:
        with transaction.atomic():
            product.save()
    except IntegrityError as exc:
        raise Conflict(_("SKU “%(sku)s”已存在。") % {"sku": product.sku}, code="sku_taken",
                       fields={"sku": [_("已存在")]}) from exc
    return product


@transaction.atomic
def product_create(*, actor: Actor, sku: str, name: str, **data) -> Product:
    product = Product(tenant_id=actor.tenant.pk, sku=sku, name=name)
    return product_update(actor=actor, product=product, **data)


@transaction.atomic
def product_update(*, actor: Actor, product: Product, **data) -> Product:
    """Change a product's name, category, price or whether it is on sale.  The SKU stays: it
    is what ties the product to its order lines."""
    for key in PRODUCT_FIELDS:
        if key in data:
            setattr(product, key, data[key])
    return _product_save(product)


@transaction.atomic
def product_sync_from_orders(*, skus: list[str] | None = None) -> int:
    """Create a product for every SKU seen in the tenant's order lines (among ``skus`` when
    given) that has none yet, named, categorised and priced after its latest line.  One
    statement; idempotent and safe to run concurrently.  Returns how many were created."""
    tenant_id = require_tenant_id()
    if skus is not None:
        known = set(Product.objects.filter(sku__in=skus).values_list("sku", flat=True))
        skus = sorted(set(skus) - known)
        if not skus:
            return 0
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    only = f"AND l.sku IN ({_placeholders(skus)})" if skus is not None else ""
    # Names come from the models; every value travels as a parameter.
    statement = f"""
        INSERT INTO {_table(Product)}
            (tenant_id, sku, name, category, price_fen, is_active, created_at, updated_at)
        SELECT %s, sku, product, category, price_fen, %s, %s, %s FROM (
            SELECT l.sku, l.product, l.category, l.price_fen,
                   ROW_NUMBER() OVER (PARTITION BY l.sku ORDER BY o.paid_at DESC, l.id DESC) AS n
            FROM {_table(OrderLine)} l
            JOIN {_table(Order)} o ON o.tenant_id = l.tenant_id AND o.id = l.order_id
            WHERE l.tenant_id = %s {only}
              AND NOT EXISTS (SELECT 1 FROM {_table(Product)} p
                              WHERE p.tenant_id = l.tenant_id AND p.sku = l.sku)
        ) latest
        WHERE n = 1
        ON CONFLICT (tenant_id, sku) DO NOTHING
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(statement, [tenant_id, True, now, now, tenant_id, *(skus or [])])
        return max(cursor.rowcount, 0)


def product_sync_for_orders(*, order_ids: list[int]) -> int:
    """After orders are paid: create the products of any SKUs they brought that are new."""
    skus = list(OrderLine.objects.filter(order_id__in=order_ids)
                .values_list("sku", flat=True).distinct())
    return product_sync_from_orders(skus=skus) if skus else 0


@transaction.atomic
def product_tag_add(*, actor: Actor, product: Product, tag: Tag) -> bool:
    """Tag a product; False when it already had the tag.  Only product tags may go on it."""
    if tag.target not in (Tag.Target.PRODUCT, Tag.Target.BOTH):
        raise ApplicationError(
            _("标签“%(name)s”只适用于会员，不能打在商品上。") % {"name": tag.name},
            code="tag_not_for_products", fields={"tag_id": [_("该标签不适用于商品")]})
    _row, created = ProductTag.objects.get_or_create(tenant_id=product.tenant_id,
                                                     product=product, tag=tag)
    return created


@transaction.atomic
def product_tag_remove(*, actor: Actor, product: Product, tag: Tag) -> bool:
    deleted, _detail = ProductTag.objects.filter(product=product, tag=tag).delete()
    return bool(deleted)


# ---- matching ----------------------------------------------------------------------------

def _decay_sql() -> str:
    """``quantity × 0.5 ** (age / half-life)`` of an order line ``l`` of order ``o``; takes
    two parameters, the current time and the half-life in seconds.  Future times count as
    now."""
    if connection.vendor == "postgresql":
        age = "GREATEST(EXTRACT(EPOCH FROM (%s::timestamptz - o.paid_at))::float8, 0)"
    else:
        age = "MAX((julianday(%s) - julianday(o.paid_at)) * 86400.0, 0)"
    return f"l.quantity * POWER(0.5, {age} / %s)"


def _decay_params(now: dt.datetime | None) -> list:
    return [connection.ops.adapt_datetimefield_value(now or timezone.now()),
            HALF_LIFE_DAYS * 86400.0]


def _purchases_sql(where: str, *, join_members: bool = False) -> str:
    """Order lines of counted orders joined to their products' tags (and buyers), filtered by
    ``where``.  Parameters: the tenant id, the counted statuses, then those of ``where``."""
    members = (f"JOIN {_table(Member)} m ON m.tenant_id = o.tenant_id AND m.id = o.member_id"
               if join_members else "")
    return f"""
        FROM {_table(Order)} o
        {members}
        JOIN {_table(OrderLine)} l ON l.tenant_id = o.tenant_id AND l.order_id = o.id
        JOIN {_table(Product)} p ON p.tenant_id = l.tenant_id AND p.sku = l.sku
        JOIN {_table(ProductTag)} pt ON pt.tenant_id = p.tenant_id AND pt.product_id = p.id
        WHERE o.tenant_id = %s AND o.status IN ({_placeholders(COUNTED_STATUSES)}) AND {where}
    """  # noqa: S608


def member_preferences(*, member: Member, now: dt.datetime | None = None) -> dict[int, float]:
    """Tag id → the member's preference weight, from their purchases (see the module)."""
    statement = (f"SELECT pt.tag_id, SUM({_decay_sql()}) "  # noqa: S608
                 f"{_purchases_sql('o.member_id = %s')} GROUP BY pt.tag_id")
    params = [*_decay_params(now), member.tenant_id, *COUNTED_STATUSES, member.pk]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return {tag_id: float(weight) for tag_id, weight in cursor.fetchall()}


@dataclass(frozen=True)
class Recommendation:
    product: Product
    score: float
    matched: list[tuple[Tag, float]]  # the product's tags the member prefers, strongest first
    already_bought: bool


def product_recommend(*, member: Member, limit: int = 10,
                      now: dt.datetime | None = None
                      ) -> tuple[dict[int, float], list[Recommendation]]:
    """The products on sale this member most likely wants: ranked by score, then those they
    have not bought yet, then id.  Returns the member's preferences and the ranking; nothing
    for a member who withdrew profiling consent."""
    if not member.profiling_consent:
        return {}, []
    weights = member_preferences(member=member, now=now)
    if not weights:
        return weights, []
    score = Sum(Case(*[When(product_tags__tag_id=tag_id, then=Value(weight))
                       for tag_id, weight in weights.items()],
                     default=Value(0.0), output_field=FloatField()))
    # The member's own SKUs, found through their orders: order lines have no index on SKU.
    orders = Order.objects.filter(member_id=member.pk, status__in=COUNTED_STATUSES)
    bought = list(OrderLine.objects.filter(order_id__in=orders.values("pk"))
                  .values_list("sku", flat=True).distinct())
    products = list(
        Product.objects.filter(is_active=True, product_tags__tag_id__in=list(weights))
        .annotate(score=score, already_bought=Case(When(sku__in=bought, then=Value(True)),
                                                   default=Value(False),
                                                   output_field=BooleanField()))
        .order_by("-score", "already_bought", "pk")[:limit])
    matched: dict[int, list[tuple[Tag, float]]] = {product.pk: [] for product in products}
    for row in (ProductTag.objects.filter(product_id__in=list(matched), tag_id__in=list(weights))
                .select_related("tag")):
        matched[row.product_id].append((row.tag, weights[row.tag_id]))
    return weights, [
        Recommendation(product=product, score=product.score, already_bought=product.already_bought,
                       matched=sorted(matched[product.pk], key=lambda pair: (-pair[1], pair[0].pk)))
        for product in products
    ]


def product_audience_scores(*, product: Product, limit: int,
                            now: dt.datetime | None = None) -> tuple[list[tuple[int, float]], int]:
    """The active members most likely to want ``product``: (member_no, score) of the top
    ``limit`` with a score above zero, best first, and how many have a score at all.  One
    aggregate over the tenant's order lines ⨝ products ⨝ the product's own tags."""
    tag_ids = list(ProductTag.objects.filter(product=product).values_list("tag_id", flat=True))
    if not tag_ids:
        return [], 0
    # Members who withdrew profiling consent are left out of people-goods matching.
    where = f"pt.tag_id IN ({_placeholders(tag_ids)}) AND m.status = %s AND m.profiling_consent"
    statement = f"""
        SELECT member_no, score, COUNT(*) OVER () FROM (
            SELECT m.member_no, SUM({_decay_sql()}) AS score
            {_purchases_sql(where, join_members=True)}
            GROUP BY m.member_no
        ) scored
        WHERE score > 0
        ORDER BY score DESC, member_no
        LIMIT %s
    """  # noqa: S608
    params = [*_decay_params(now), product.tenant_id, *COUNTED_STATUSES, *tag_ids,
              Member.Status.ACTIVE, limit]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    return [(member_no, float(score)) for member_no, score, _total in rows], (
        rows[0][2] if rows else 0)


@transaction.atomic
def product_audience_job_create(*, actor: Actor, product: Product, limit: int) -> Job:
    """Queue the build of ``product``'s audience (see ``product_audience_run``)."""
    from tags.tasks import product_audience_task

    # The row lock makes a second request for the same product wait and then see this job.
    Product.objects.select_for_update().filter(pk=product.pk).first()
    if not ProductTag.objects.filter(product=product).exists():
        raise ApplicationError(_("商品“%(name)s”还没有标签，无法匹配人群。") % {
            "name": product.name}, code="product_not_tagged")
    running = Job.objects.filter(
        kind=AUDIENCE_JOB, params__product_id=product.pk,
        status__in=[Job.Status.PENDING, Job.Status.RUNNING],
        created_at__gte=timezone.now() - AUDIENCE_JOB_STALE).first()
    if running is not None:
        raise Conflict(_("该商品的潜在人群正在计算中（任务 %(job)s）。") % {"job": running.pk},
                       code="audience_job_running", fields={"job": running.pk})
    job = job_create(actor=actor, kind=AUDIENCE_JOB,
                     params={"product_id": product.pk, "sku": product.sku, "limit": limit})
    transaction.on_commit(lambda: product_audience_task.delay(actor.tenant.pk, job.pk))
    return job


def product_audience_run(*, job: Job) -> None:
    """Put the top members for the product into its system tag "想要:<name>" (group 人货匹配),
    replacing whoever was there, and keep a segment on that tag.

    First the audience is computed and frozen in the job with the tag and segment it goes to;
    then the tag's members are brought in line one committed chunk at a time, through the
    bulk-tagging path so the audience index stays exact.  A re-run after a crash skips the
    computing and applies what is still missing."""
    job_start(job=job)
    if job.payload is None:
        _audience_prepare(job)
    tag = Tag.objects.get(pk=job.checkpoint["tag_id"])
    wanted = BitMap.deserialize(bytes(job.payload))
    have = BitMap(MemberTag.objects.filter(tag=tag).values_list("member__member_no", flat=True))
    done, changed = job.done, {ADD: 0, REMOVE: 0}
    Job.objects.filter(pk=job.pk).update(total=done + len(have ^ wanted))
    for action, member_nos in ((REMOVE, have - wanted), (ADD, wanted - have)):
        numbers = list(member_nos)
        for start in range(0, len(numbers), CHUNK):
            chunk = numbers[start:start + CHUNK]
            with transaction.atomic():
                changed[action] += tag_apply_chunk(tag=tag, action=action, member_nos=chunk,
                                                   actor=job.created_by,
                                                   source=MemberTag.Source.SYSTEM)
                done += len(chunk)
                job_progress(job=job, done=done, checkpoint=job.checkpoint)
    segment = Segment.objects.get(pk=job.checkpoint["segment_id"])
    job_finish(job=job, result={
        "segment": {"id": segment.pk, "name": segment.name, "expression": segment.expression,
                    "member_count": segment_count(segment=segment)},
        "tag": {"id": tag.pk, "name": tag.name},
        "candidates": job.checkpoint["candidates"],
        "added": changed[ADD], "removed": changed[REMOVE],
        "members": job.checkpoint["members"],
    })


def _audience_prepare(job: Job) -> None:
    product = Product.objects.get(pk=job.params["product_id"])
    scores, candidates = product_audience_scores(product=product, limit=job.params["limit"])
    actor = Actor(tenant=Tenant.objects.get(pk=job.tenant_id))
    with transaction.atomic():
        tag = _audience_tag(actor, product)
        segment = Segment.objects.filter(expression={"tag": tag.pk}).order_by("pk").first()
        segment = segment_save(
            actor=actor, segment=segment or Segment(tenant_id=job.tenant_id,
                                                    created_by=job.created_by),
            name=f"{product.name} 潜在人群"[:128], expression={"tag": tag.pk},
            description=_("人货匹配：最可能想要 %(sku)s 的会员") % {"sku": product.sku})
        job.checkpoint = {"tag_id": tag.pk, "segment_id": segment.pk, "candidates": candidates,
                          "members": _members_of(scores[:AUDIENCE_TOP])}
        job.payload = BitMap(member_no for member_no, _score in scores).serialize()
        Job.objects.filter(pk=job.pk).update(checkpoint=job.checkpoint, payload=job.payload)


def _members_of(scores: list[tuple[int, float]]) -> list[dict]:
    rows = {no: (pk, name) for pk, no, name in Member.objects.filter(
        member_no__in=[no for no, _score in scores]).values_list("pk", "member_no", "name")}
    return [{"id": rows[no][0], "member_no": no, "name": rows[no][1], "score": round(score, 4)}
            for no, score in scores if no in rows]


def _matching_group(actor: Actor) -> TagGroup:
    group = TagGroup.objects.filter(name=MATCHING_GROUP).first()
    if group is not None:
        return group
    try:
        return tag_group_save(actor=actor, name=MATCHING_GROUP,
                              description=_("人货匹配生成的潜在人群标签"))
    except Conflict:  # created meanwhile by a concurrent job
        return TagGroup.objects.get(name=MATCHING_GROUP)


def _audience_tag(actor: Actor, product: Product) -> Tag:
    """The product's audience tag, found by its external key so a renamed product keeps its
    tag (renamed too).  Products may share a name: the second one's tag adds its SKU."""
    group = _matching_group(actor)
    tag = Tag.objects.filter(external_source=AUDIENCE_SOURCE,
                             external_id=str(product.pk)).first()
    plain = f"想要:{product.name}"
    names = [plain[:64], f"{plain[:62 - len(product.sku)]}({product.sku})"]
    if tag is not None and tag.name in names:
        return tag
    for name in names:
        try:
            return tag_save(actor=actor, tag=tag, group=group, name=name, kind=Tag.Kind.SYSTEM,
                            target=Tag.Target.MEMBER, external_source=AUDIENCE_SOURCE,
                            external_id=str(product.pk))
        except Conflict:
            continue
    raise Conflict(_("标签名“%(name)s”已被占用。") % {"name": names[-1]}, code="name_taken")
