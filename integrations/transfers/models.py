"""Uploaded files being imported, and what their dry run or run found wrong, row by row."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.models import Job, TenantModel


class ImportKind(models.TextChoices):
    MEMBERS = "members", _("会员")
    ORDERS = "orders", _("订单")


class ImportFile(TenantModel):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("已上传")
        CHECKING = "checking", _("校验中")
        CHECKED = "checked", _("已校验")
        RUNNING = "running", _("导入中")
        FINISHED = "finished", _("已完成")
        FAILED = "failed", _("失败")

    kind = models.CharField(_("类型"), max_length=16, choices=ImportKind.choices)
    file_name = models.CharField(_("文件名"), max_length=255)
    storage_name = models.CharField(max_length=255)  # the file's name in default storage
    file_format = models.CharField(_("格式"), max_length=8)  # csv or xlsx
    encoding = models.CharField(_("编码"), max_length=16, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(_("大小"), default=0)
    headers = models.JSONField(_("表头"), default=list)
    mapping = models.JSONField(_("列映射"), default=list)  # one {"field", "app_id"} per column
    options = models.JSONField(_("选项"), default=dict)  # e.g. the orders' default channel
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices,
                              default=Status.UPLOADED)
    check_job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True,
                                  db_constraint=False, related_name="+",
                                  verbose_name=_("校验任务"))
    run_job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True,
                                db_constraint=False, related_name="+",
                                verbose_name=_("导入任务"))
    created_by = models.CharField(_("上传人"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("上传时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("导入文件")
        verbose_name_plural = _("导入文件")
        indexes = [models.Index(fields=["tenant", "-created_at"], name="import_tenant_time_idx")]

    def __str__(self) -> str:
        return self.file_name


class ImportIssue(TenantModel):
    """One reason a row was (or, in a dry run, would be) skipped."""

    class Phase(models.TextChoices):
        CHECK = "check", _("试运行")
        RUN = "run", _("导入")

    upload = models.ForeignKey(ImportFile, on_delete=models.CASCADE, db_constraint=False,
                               related_name="issues", verbose_name=_("导入文件"))
    phase = models.CharField(_("阶段"), max_length=8, choices=Phase.choices)
    row = models.PositiveIntegerField(_("行号"))
    field = models.CharField(_("字段"), max_length=32, blank=True)
    code = models.CharField(_("错误码"), max_length=32)
    reason = models.CharField(_("原因"), max_length=255)

    class Meta:
        verbose_name = _("导入问题")
        verbose_name_plural = _("导入问题")
        indexes = [models.Index(fields=["tenant", "upload", "phase", "row"],
                                name="importissue_upload_row_idx")]

    def __str__(self) -> str:
        return f"{self.row}: {self.reason}"
