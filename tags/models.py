from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.models import TenantModel


class TagGroup(TenantModel):
    name = models.CharField(_("名称"), max_length=64)
    description = models.CharField(_("说明"), max_length=255, blank=True)
    color = models.CharField(_("颜色"), max_length=16, default="#1677ff")
    sort_order = models.IntegerField(_("排序"), default=0)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("标签组")
        verbose_name_plural = _("标签组")
        ordering = ["sort_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="taggroup_tenant_name_uniq"),
        ]

    def __str__(self) -> str:
        return self.name


class Tag(TenantModel):
    class Kind(models.TextChoices):
        MANUAL = "manual", _("手工标签")
        RULE = "rule", _("规则标签")
        SYSTEM = "system", _("系统标签")
        SYNCED = "synced", _("同步标签")

    class Target(models.TextChoices):
        MEMBER = "member", _("会员")
        PRODUCT = "product", _("商品")
        BOTH = "both", _("会员与商品")

    group = models.ForeignKey(TagGroup, on_delete=models.PROTECT, db_constraint=False,
                              db_index=False, related_name="tags", verbose_name=_("标签组"))
    name = models.CharField(_("名称"), max_length=64)
    description = models.CharField(_("说明"), max_length=255, blank=True)
    kind = models.CharField(_("类型"), max_length=8, choices=Kind.choices, default=Kind.MANUAL)
    target = models.CharField(_("适用对象"), max_length=8, choices=Target.choices,
                              default=Target.MEMBER)
    rule = models.JSONField(_("规则"), null=True, blank=True)
    external_source = models.CharField(_("外部来源"), max_length=16, blank=True)
    external_id = models.CharField(_("外部 ID"), max_length=64, blank=True)
    member_count = models.PositiveIntegerField(_("会员数"), default=0)
    rule_evaluated_at = models.DateTimeField(_("规则计算时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("标签")
        verbose_name_plural = _("标签")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "group", "name"],
                                    name="tag_tenant_group_name_uniq"),
            models.UniqueConstraint(fields=["tenant", "external_source", "external_id"],
                                    name="tag_tenant_external_uniq",
                                    condition=~Q(external_id="")),
        ]
        indexes = [models.Index(fields=["tenant", "kind"], name="tag_tenant_kind_idx")]

    def __str__(self) -> str:
        return self.name


class MemberTag(TenantModel):
    class Source(models.TextChoices):
        MANUAL = "manual", _("手工")
        RULE = "rule", _("规则")
        SYNC = "sync", _("同步")
        SYSTEM = "system", _("系统")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, db_constraint=False,
                               db_index=False, related_name="member_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, db_constraint=False,
                            db_index=False, related_name="member_tags")
    source = models.CharField(_("来源"), max_length=8, choices=Source.choices)
    tagged_by = models.CharField(_("操作人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("打标时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("会员标签")
        verbose_name_plural = _("会员标签")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "tag", "member"],
                                    name="membertag_tenant_tag_member_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "member"], name="membertag_tenant_member_idx")]


class Segment(TenantModel):
    name = models.CharField(_("名称"), max_length=128)
    description = models.CharField(_("说明"), max_length=255, blank=True)
    expression = models.JSONField(_("人群表达式"))
    created_by = models.CharField(_("创建人"), max_length=64, blank=True)
    last_count = models.PositiveIntegerField(_("最近人数"), null=True, blank=True)
    last_counted_at = models.DateTimeField(_("最近计算时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("人群")
        verbose_name_plural = _("人群")

    def __str__(self) -> str:
        return self.name


class SegmentSnapshot(TenantModel):
    """A segment's members frozen at one moment (a roaring bitmap of member numbers)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="snapshots")
    expression = models.JSONField()
    member_count = models.PositiveIntegerField(_("人数"))
    bitmap = models.BinaryField()
    created_by = models.CharField(_("创建人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("快照时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("人群快照")
        verbose_name_plural = _("人群快照")
        indexes = [models.Index(fields=["tenant", "segment", "-created_at"],
                                name="snapshot_tenant_segment_idx")]


class AudienceBitmap(TenantModel):
    """The audience index's base: one bitmap of member numbers per (field, value).

    Numeric fields are split into quantile buckets: ``value`` is the bucket number, ``low`` and
    ``high`` its bounds and ``payload`` the bucket's sorted (value, member_no) arrays, so a
    range needs whole-bucket bitmaps plus at most two partial buckets."""

    field = models.CharField(max_length=64)
    value = models.CharField(max_length=128)
    version = models.PositiveIntegerField(default=1)
    cardinality = models.PositiveIntegerField(default=0)
    low = models.BigIntegerField(null=True)
    high = models.BigIntegerField(null=True)
    bitmap = models.BinaryField()
    payload = models.BinaryField(null=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "field", "value"],
                                    name="audiencebitmap_tenant_field_value_uniq"),
        ]


class AudienceDirty(TenantModel):
    """A member whose data changed since the index base was last folded.  Counting corrects
    these members with SQL; the fold job folds them into the base and deletes these rows."""

    member_no = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["tenant", "id"], name="dirty_tenant_id_idx")]

    def __str__(self) -> str:
        return str(self.member_no)


class Product(TenantModel):
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("商品名称"), max_length=128)
    category = models.CharField(_("品类"), max_length=64, blank=True)
    price_fen = models.BigIntegerField(_("价格(分)"), null=True, blank=True)
    is_active = models.BooleanField(_("在售"), default=True)
    tags = models.ManyToManyField(Tag, through="ProductTag", related_name="products",
                                  verbose_name=_("标签"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("商品")
        verbose_name_plural = _("商品")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sku"], name="product_tenant_sku_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class ProductTag(TenantModel):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, db_constraint=False,
                                db_index=False, related_name="product_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, db_constraint=False,
                            db_index=False, related_name="product_tags")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "product", "tag"],
                                    name="producttag_tenant_product_tag_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "tag"], name="producttag_tenant_tag_idx")]
