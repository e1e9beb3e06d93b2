"""Integrations API: OA and WeCom connections (secrets write-only), their checks and syncs,
tag sync, channel codes with statistics, customer transfers, loss alerts, callback log."""

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from integrations.models import CallbackEvent, ChannelCode, LossAlert, OAApp, WeComCorp
from integrations.services import channels, connections, followers, tagsync, wecom
from scrm.access import INTEGRATIONS_MANAGE, INTEGRATIONS_READ
from scrm.api.idempotency import idempotent
from scrm.api.pagination import CursorPagination, paginated_response
from scrm.api.serializers import DateTimeField, JobOutput, StrictSerializer
from scrm.api.views import TenantApiView
from scrm.models import Store
from tags.models import Tag

CONNECTION_FIELDS = ("id", "name", "is_active", "check_status", "check_message", "checked_at",
                     "last_sync_at", "last_error", "created_at")


class OAAppInput(StrictSerializer):
    appid = serializers.RegexField(r"^wx[0-9a-zA-Z]{6,30}$", max_length=32)
    secret = serializers.CharField(max_length=64, required=False, write_only=True)
    name = serializers.CharField(max_length=64, required=False, allow_blank=True)
    token = serializers.CharField(max_length=32, required=False, allow_blank=True)
    aes_key = serializers.CharField(max_length=43, required=False, allow_blank=True)
    message_mode = serializers.ChoiceField(choices=OAApp.MessageMode.choices, required=False,
                                           default=OAApp.MessageMode.SAFE)
    original_id = serializers.CharField(max_length=32, required=False, allow_blank=True)


class WeComCorpInput(StrictSerializer):
    corpid = serializers.RegexField(r"^ww[0-9a-zA-Z]{6,30}$|^wx[0-9a-zA-Z]{6,30}$",
                                    max_length=32)
    secret = serializers.CharField(max_length=64, required=False)
    name = serializers.CharField(max_length=64, required=False, allow_blank=True)
    token = serializers.CharField(max_length=32, required=False, allow_blank=True)
    aes_key = serializers.CharField(max_length=43, required=False, allow_blank=True)
    agent_id = serializers.CharField(max_length=16, required=False, allow_blank=True)
    agent_secret = serializers.CharField(max_length=64, required=False, allow_blank=True)


class OAAppOutput(serializers.ModelSerializer):
    callback_url = serializers.SerializerMethodField()
    has_token = serializers.SerializerMethodField()
    has_aes_key = serializers.SerializerMethodField()

    class Meta:
        model = OAApp
        fields = ("appid", "original_id", "message_mode", "callback_url", "has_token",
                  "has_aes_key", *CONNECTION_FIELDS)

    def get_callback_url(self, obj) -> str:
        return connections.callback_url(obj)

    def get_has_token(self, obj) -> bool:
        return bool(obj.token_encrypted)

    def get_has_aes_key(self, obj) -> bool:
        return bool(obj.aes_key_encrypted)


class WeComCorpOutput(OAAppOutput):
    class Meta:
        model = WeComCorp
        fields = ("corpid", "agent_id", "callback_url", "has_token", "has_aes_key",
                  *CONNECTION_FIELDS)


class CheckOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    problems = serializers.ListField(child=serializers.CharField())
    callback_url = serializers.CharField()


class SyncOutput(serializers.Serializer):
    job = JobOutput(allow_null=True)


class _ConnectionApi(TenantApiView):
    model: type = OAApp

    def get_connection(self, pk: int):
        connection = self.model.objects.filter(pk=pk).first()
        if connection is None:
            raise NotFound(_("未找到。"))
        return connection


class OAAppListCreateApi(_ConnectionApi):
    required_scopes = {"GET": INTEGRATIONS_READ, "POST": INTEGRATIONS_MANAGE}

    @extend_schema(responses=OAAppOutput(many=True), operation_id="oa_apps_list")
    def get(self, request):
        return Response(OAAppOutput(OAApp.objects.order_by("pk"), many=True).data)

    @extend_schema(request=OAAppInput, responses={201: OAAppOutput, 200: OAAppOutput},
                   operation_id="oa_apps_connect")
    @idempotent
    def post(self, request):
        data = OAAppInput(data=request.data)
        data.is_valid(raise_exception=True)
        existed = OAApp.objects.filter(appid=data.validated_data["appid"]).exists()
        app = connections.oa_app_connect(actor=self.actor, **data.validated_data)
        app.refresh_from_db()
        return Response(OAAppOutput(app).data,
                        status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class WeComCorpListCreateApi(_ConnectionApi):
    model = WeComCorp
    required_scopes = {"GET": INTEGRATIONS_READ, "POST": INTEGRATIONS_MANAGE}

    @extend_schema(responses=WeComCorpOutput(many=True), operation_id="wecom_corps_list")
    def get(self, request):
        return Response(WeComCorpOutput(WeComCorp.objects.order_by("pk"), many=True).data)

    @extend_schema(request=WeComCorpInput, responses={201: WeComCorpOutput, 200: WeComCorpOutput},
                   operation_id="wecom_corps_connect")
    @idempotent
    def post(self, request):
        data = WeComCorpInput(data=request.data)
        data.is_valid(raise_exception=True)
        existed = WeComCorp.objects.filter(corpid=data.validated_data["corpid"]).exists()
        corp = connections.wecom_corp_connect(actor=self.actor, **data.validated_data)
        corp.refresh_from_db()
        return Response(WeComCorpOutput(corp).data,
                        status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class OAAppCheckApi(_ConnectionApi):
    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=None, responses=CheckOutput, operation_id="oa_app_check")
    def post(self, request, app_id: int):
        return Response(connections.connection_check(connection=self.get_connection(app_id)))


class WeComCorpCheckApi(_ConnectionApi):
    model = WeComCorp
    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=None, responses=CheckOutput, operation_id="wecom_corp_check")
    def post(self, request, corp_id: int):
        return Response(connections.connection_check(connection=self.get_connection(corp_id)))


class OAAppSyncApi(_ConnectionApi):
    """POST starts (or resumes) a full follower sync, GET shows its progress."""

    required_scopes = {"GET": INTEGRATIONS_READ, "POST": INTEGRATIONS_MANAGE}

    @extend_schema(responses=SyncOutput, operation_id="oa_app_sync_status")
    def get(self, request, app_id: int):
        state = followers.follower_sync_status(app=self.get_connection(app_id))
        return Response({"job": JobOutput(state["job"]).data if state["job"] else None,
                         "followers": state["followers"],
                         "unsubscribed": state["unsubscribed"]})

    @extend_schema(request=None, responses={202: SyncOutput}, operation_id="oa_app_sync")
    def post(self, request, app_id: int):
        job = followers.followers_sync_start(actor=self.actor, app=self.get_connection(app_id))
        return Response({"job": JobOutput(job).data}, status=status.HTTP_202_ACCEPTED)


class WeComCorpSyncApi(_ConnectionApi):
    model = WeComCorp
    required_scopes = {"GET": INTEGRATIONS_READ, "POST": INTEGRATIONS_MANAGE}

    @extend_schema(responses=SyncOutput, operation_id="wecom_corp_sync_status")
    def get(self, request, corp_id: int):
        from scrm.models import Job

        self.get_connection(corp_id)
        job = Job.objects.filter(kind=wecom.JOB_KIND,
                                 params__corp_id=corp_id).order_by("-pk").first()
        return Response({"job": JobOutput(job).data if job else None})

    @extend_schema(request=None, responses={202: SyncOutput}, operation_id="wecom_corp_sync")
    def post(self, request, corp_id: int):
        job = wecom.wecom_sync_start(actor=self.actor, corp=self.get_connection(corp_id))
        return Response({"job": JobOutput(job).data}, status=status.HTTP_202_ACCEPTED)


class TagPullOutput(serializers.Serializer):
    tags = serializers.IntegerField()
    added = serializers.IntegerField()
    removed = serializers.IntegerField()
    deleted = serializers.IntegerField()


class OAAppTagsPullApi(_ConnectionApi):
    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=None, responses=TagPullOutput, operation_id="oa_app_tags_pull")
    def post(self, request, app_id: int):
        return Response(tagsync.oa_tags_pull(app=self.get_connection(app_id)))


class WeComCorpTagsPullApi(_ConnectionApi):
    model = WeComCorp
    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=None, responses=TagPullOutput, operation_id="wecom_corp_tags_pull")
    def post(self, request, corp_id: int):
        return Response(tagsync.corp_tags_pull(corp=self.get_connection(corp_id)))


class TagPushInput(StrictSerializer):
    tag = serializers.IntegerField(min_value=1)


class SyncedTagOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    external_source = serializers.CharField()
    external_id = serializers.CharField()


class OAAppTagPushApi(_ConnectionApi):
    """Create an SCRM tag on the OA (once) and tag its members' openids there."""

    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=TagPushInput, responses=SyncedTagOutput, operation_id="oa_app_tag_push")
    @idempotent
    def post(self, request, app_id: int):
        data = TagPushInput(data=request.data)
        data.is_valid(raise_exception=True)
        tag = Tag.objects.filter(pk=data.validated_data["tag"]).first()
        if tag is None:
            raise NotFound(_("未找到标签。"))
        tag = tagsync.oa_tag_push(actor=self.actor, app=self.get_connection(app_id), tag=tag)
        return Response(SyncedTagOutput(tag).data)


class CorpTagMarkInput(StrictSerializer):
    member = serializers.IntegerField(min_value=1)
    tag = serializers.IntegerField(min_value=1)
    add = serializers.BooleanField(default=True)


class CorpTagMarkOutput(serializers.Serializer):
    relations = serializers.IntegerField()


class WeComCorpTagMarkApi(_ConnectionApi):
    """Put a corp tag on (or off) a customer in WeCom, on every guide's view of them."""

    model = WeComCorp
    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=CorpTagMarkInput, responses=CorpTagMarkOutput,
                   operation_id="wecom_corp_tag_mark")
    @idempotent
    def post(self, request, corp_id: int):
        from members.selectors import member_visible

        data = CorpTagMarkInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        member = member_visible(actor=self.actor).filter(pk=values["member"]).first()
        tag = Tag.objects.filter(pk=values["tag"]).first()
        if member is None or tag is None:
            raise NotFound(_("未找到。"))
        marked = tagsync.corp_tag_mark(actor=self.actor, corp=self.get_connection(corp_id),
                                       member=member, tag=tag, add=values["add"])
        return Response({"relations": marked})


class WeComCorpTagPushApi(_ConnectionApi):
    """Create an SCRM tag as a WeCom corp tag (once) and mark it on its members."""

    model = WeComCorp
    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=TagPushInput, responses=SyncedTagOutput,
                   operation_id="wecom_corp_tag_push")
    @idempotent
    def post(self, request, corp_id: int):
        data = TagPushInput(data=request.data)
        data.is_valid(raise_exception=True)
        tag = Tag.objects.select_related("group").filter(pk=data.validated_data["tag"]).first()
        if tag is None:
            raise NotFound(_("未找到标签。"))
        tag = tagsync.corp_tag_push(actor=self.actor, corp=self.get_connection(corp_id), tag=tag)
        return Response(SyncedTagOutput(tag).data)


class TemplateMessageInput(StrictSerializer):
    member = serializers.IntegerField(min_value=1)
    template_id = serializers.CharField(max_length=64)
    data = serializers.DictField(child=serializers.CharField(max_length=200), allow_empty=False)
    url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    key = serializers.CharField(max_length=64, help_text=_("去重键：同一键只发送一次"))


class TemplateMessageOutput(serializers.Serializer):
    id = serializers.IntegerField()
    member = serializers.IntegerField(source="member_id")
    template_id = serializers.CharField()
    client_msg_id = serializers.CharField()
    msgid = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    error = serializers.CharField()
    sent_at = DateTimeField(allow_null=True)
    finished_at = DateTimeField(allow_null=True)


class OAAppTemplateMessageApi(_ConnectionApi):
    """Send a template message to a member (once per key); the answer says whether it went,
    and a later TEMPLATESENDJOBFINISH says whether it arrived."""

    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=TemplateMessageInput, responses=TemplateMessageOutput,
                   operation_id="oa_app_template_message_send")
    def post(self, request, app_id: int):
        from integrations.services.messages import template_send
        from members.selectors import member_visible

        data = TemplateMessageInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        member = member_visible(actor=self.actor).filter(pk=values.pop("member")).first()
        if member is None:
            raise NotFound(_("未找到会员。"))
        message = template_send(app=self.get_connection(app_id), member=member, **values)
        return Response(TemplateMessageOutput(message).data)


class MassMessageInput(StrictSerializer):
    sender_userid = serializers.CharField(max_length=64)
    member_ids = serializers.ListField(child=serializers.IntegerField(min_value=1),
                                       min_length=1, max_length=10_000)
    text = serializers.CharField(max_length=4000)
    key = serializers.CharField(max_length=128)


class MassMessageOutput(serializers.Serializer):
    id = serializers.IntegerField()
    msgid = serializers.CharField()
    sender_userid = serializers.CharField()
    recipients = serializers.IntegerField()
    skipped = serializers.IntegerField()


class WeComMassMessageApi(_ConnectionApi):
    """A mass-message task for a guide (企业群发) to their customers among ``member_ids``;
    customers at their receive limit are left out."""

    model = WeComCorp
    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=MassMessageInput, responses={201: MassMessageOutput},
                   operation_id="wecom_mass_message_create")
    def post(self, request, corp_id: int):
        from integrations.models import MassMessageRecipient
        from integrations.services.messages import mass_message_create

        data = MassMessageInput(data=request.data)
        data.is_valid(raise_exception=True)
        message = mass_message_create(actor=self.actor, corp=self.get_connection(corp_id),
                                      **data.validated_data)
        recipients = MassMessageRecipient.objects.filter(message=message)
        return Response({"id": message.pk, "msgid": message.msgid,
                         "sender_userid": message.sender_userid,
                         "recipients": recipients.count(),
                         "skipped": recipients.filter(
                             status=MassMessageRecipient.Status.SKIPPED).count()},
                        status=status.HTTP_201_CREATED)


class TransferInput(StrictSerializer):
    handover_userid = serializers.CharField(max_length=64)
    takeover_userid = serializers.CharField(max_length=64)
    external_userids = serializers.ListField(child=serializers.CharField(max_length=64),
                                             min_length=1, max_length=1000)
    resigned = serializers.BooleanField(default=False,
                                        help_text=_("true：离职继承；false：在职转接"))


class TransferResultOutput(serializers.Serializer):
    external_userid = serializers.CharField()
    errcode = serializers.IntegerField()


class WeComTransferApi(_ConnectionApi):
    model = WeComCorp
    required_scopes = {"POST": INTEGRATIONS_MANAGE}

    @extend_schema(request=TransferInput, responses=TransferResultOutput(many=True),
                   operation_id="wecom_customers_transfer")
    @idempotent
    def post(self, request, corp_id: int):
        data = TransferInput(data=request.data)
        data.is_valid(raise_exception=True)
        results = wecom.customers_transfer(actor=self.actor, corp=self.get_connection(corp_id),
                                           **data.validated_data)
        return Response(TransferResultOutput(results, many=True).data)


# Channel codes


class ChannelCodeInput(StrictSerializer):
    kind = serializers.ChoiceField(choices=ChannelCode.Kind.choices)
    name = serializers.CharField(max_length=64)
    oa_app = serializers.IntegerField(required=False, min_value=1)
    corp = serializers.IntegerField(required=False, min_value=1)
    channel = serializers.CharField(max_length=32, required=False, allow_blank=True)
    campaign = serializers.CharField(max_length=64, required=False, allow_blank=True)
    store = serializers.CharField(max_length=64, required=False, help_text=_("门店编码"))
    guide_userids = serializers.ListField(child=serializers.CharField(max_length=64),
                                          required=False, max_length=100)
    tag_ids = serializers.ListField(child=serializers.IntegerField(min_value=1),
                                    required=False, max_length=50)
    welcome_text = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    expire_seconds = serializers.IntegerField(required=False, min_value=60,
                                              max_value=channels.TEMPORARY_MAX_SECONDS)


class ChannelCodeOutput(serializers.ModelSerializer):
    class Meta:
        model = ChannelCode
        fields = ("id", "kind", "name", "channel", "campaign", "store", "oa_app", "corp",
                  "scene", "is_permanent", "expires_at", "url", "config_id", "guide_userids",
                  "tag_ids", "welcome_text", "is_active", "scans", "new_members", "created_at")


class ChannelCodeStatsOutput(serializers.Serializer):
    scans = serializers.IntegerField()
    members = serializers.IntegerField()
    new_members = serializers.IntegerField()
    eligible_7d = serializers.IntegerField()
    retained_7d = serializers.IntegerField()
    eligible_30d = serializers.IntegerField()
    retained_30d = serializers.IntegerField()


def _pick(model, pk: int | None, field: str):
    if pk is None:
        return None
    row = model.objects.filter(pk=pk).first()
    if row is None:
        raise serializers.ValidationError({field: [_("不存在。")]})
    return row


class ChannelCodeListCreateApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = {"GET": INTEGRATIONS_READ, "POST": INTEGRATIONS_MANAGE}

    @extend_schema(responses=ChannelCodeOutput(many=True), operation_id="channel_codes_list")
    def get(self, request):
        codes: QuerySet = ChannelCode.objects.order_by("-pk")
        return paginated_response(self, codes, ChannelCodeOutput, ordering=("-id",))

    @extend_schema(request=ChannelCodeInput, responses={201: ChannelCodeOutput},
                   operation_id="channel_codes_create")
    @idempotent
    def post(self, request):
        data = ChannelCodeInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        store_code = values.pop("store", None)
        store = Store.objects.filter(code=store_code).first() if store_code else None
        if store_code and store is None:
            raise serializers.ValidationError({"store": [_("未知门店。")]})
        values["oa_app"] = _pick(OAApp, values.pop("oa_app", None), "oa_app")
        values["corp"] = _pick(WeComCorp, values.pop("corp", None), "corp")
        code = channels.channel_code_create(actor=self.actor, store=store, **values)
        return Response(ChannelCodeOutput(code).data, status=status.HTTP_201_CREATED)


class ChannelCodeDetailApi(TenantApiView):
    required_scopes = {"GET": INTEGRATIONS_READ}

    @extend_schema(responses=ChannelCodeOutput, operation_id="channel_codes_retrieve")
    def get(self, request, code_id: int):
        code = ChannelCode.objects.filter(pk=code_id).first()
        if code is None:
            raise NotFound(_("未找到。"))
        return Response({**ChannelCodeOutput(code).data,
                         "stats": channels.channel_code_stats(code=code)})


# Loss alerts and the callback log


class LossAlertOutput(serializers.ModelSerializer):
    class Meta:
        model = LossAlert
        fields = ("id", "kind", "member", "guide", "guide_userid", "store_id_at_alert",
                  "created_at", "acknowledged_at", "acknowledged_by")


class LossAlertListApi(TenantApiView):
    """Open alerts first; a store manager sees their store's, a guide their own."""
    pagination_class = CursorPagination

    required_scopes = {"GET": INTEGRATIONS_READ}

    @extend_schema(responses=LossAlertOutput(many=True), operation_id="loss_alerts_list")
    def get(self, request):
        alerts = LossAlert.objects.all()
        if self.actor.guide_id is not None:
            alerts = alerts.filter(guide_id=self.actor.guide_id)
        elif self.actor.store_id is not None:
            alerts = alerts.filter(store_id_at_alert=self.actor.store_id)
        if request.query_params.get("open") == "true":
            alerts = alerts.filter(acknowledged_at__isnull=True)
        return paginated_response(self, alerts, LossAlertOutput, ordering=("-created_at", "-id"))


class LossAlertAckApi(TenantApiView):
    required_scopes = {"POST": INTEGRATIONS_READ}

    @extend_schema(request=None, responses=LossAlertOutput, operation_id="loss_alert_ack")
    def post(self, request, alert_id: int):
        from django.utils import timezone

        alerts = LossAlert.objects.filter(pk=alert_id)
        if self.actor.guide_id is not None:
            alerts = alerts.filter(guide_id=self.actor.guide_id)
        elif self.actor.store_id is not None:
            alerts = alerts.filter(store_id_at_alert=self.actor.store_id)
        alert = alerts.first()
        if alert is None:
            raise NotFound(_("未找到。"))
        if alert.acknowledged_at is None:
            LossAlert.objects.filter(pk=alert_id).update(acknowledged_at=timezone.now(),
                                                   acknowledged_by=self.actor.label)
            alert.refresh_from_db()
        return Response(LossAlertOutput(alert).data)


class CallbackEventOutput(serializers.ModelSerializer):
    class Meta:
        model = CallbackEvent
        fields = ("id", "source", "account", "event", "status", "error", "received_at",
                  "processed_at")


class CallbackEventListApi(TenantApiView):
    pagination_class = CursorPagination
    required_scopes = {"GET": INTEGRATIONS_MANAGE}

    @extend_schema(responses=CallbackEventOutput(many=True), operation_id="callback_events_list")
    def get(self, request):
        events = CallbackEvent.objects.all()
        if request.query_params.get("status"):
            events = events.filter(status=request.query_params["status"])
        return paginated_response(self, events, CallbackEventOutput,
                                  ordering=("-received_at", "-id"))

