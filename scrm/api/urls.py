from django.urls import path

from integrations.transfers import api as transfers
from members.api import members, orders, privacy
from scrm.api import audit, jobs
from tags.api import views as tags

urlpatterns = [
    path("members/", members.MemberListCreateApi.as_view(), name="members"),
    path("members/upsert/", members.MemberUpsertApi.as_view(), name="members-upsert"),
    path("members/<int:member_id>/", members.MemberDetailApi.as_view(), name="member"),
    path("members/<int:member_id>/merge/", members.MemberMergeApi.as_view(), name="member-merge"),
    path(
        "members/<int:member_id>/timeline/",
        members.MemberTimelineApi.as_view(),
        name="member-timeline",
    ),
    path("members/<int:member_id>/phone/", members.MemberPhoneApi.as_view(), name="member-phone"),
    path("members/<int:member_id>/consents/", privacy.MemberConsentsApi.as_view(),
         name="member-consents"),
    path("members/<int:member_id>/personal-data/", privacy.MemberPersonalDataApi.as_view(),
         name="member-personal-data"),
    path("members/<int:member_id>/erase/", privacy.MemberEraseApi.as_view(), name="member-erase"),
    path("orders/", orders.OrderListCreateApi.as_view(), name="orders"),
    path("orders/bulk/", orders.OrderBulkApi.as_view(), name="orders-bulk"),
    path("orders/<int:order_id>/", orders.OrderDetailApi.as_view(), name="order"),
    path("orders/<int:order_id>/refunds/", orders.OrderRefundApi.as_view(), name="order-refunds"),
    path("members/<int:member_id>/tags/", tags.MemberTagsApi.as_view(), name="member-tags"),
    path("members/<int:member_id>/tags/<int:tag_id>/", tags.MemberTagDeleteApi.as_view(),
         name="member-tag"),
    path("tag-groups/", tags.TagGroupListCreateApi.as_view(), name="tag-groups"),
    path("tag-groups/<int:group_id>/", tags.TagGroupDetailApi.as_view(), name="tag-group"),
    path("tags/", tags.TagListCreateApi.as_view(), name="tags"),
    path("tags/rule-preview/", tags.TagRulePreviewApi.as_view(), name="tags-rule-preview"),
    path("tags/<int:tag_id>/", tags.TagDetailApi.as_view(), name="tag"),
    path("tags/<int:tag_id>/bulk/", tags.TagBulkApi.as_view(), name="tag-bulk"),
    path("segments/", tags.SegmentListCreateApi.as_view(), name="segments"),
    path("segments/count/", tags.SegmentCountApi.as_view(), name="segments-count"),
    path("segments/<int:segment_id>/", tags.SegmentDetailApi.as_view(), name="segment"),
    path("segments/<int:segment_id>/members/", tags.SegmentMembersApi.as_view(),
         name="segment-members"),
    path("segments/<int:segment_id>/snapshot/", tags.SegmentSnapshotApi.as_view(),
         name="segment-snapshot"),
    path("segments/<int:segment_id>/export/", transfers.SegmentExportApi.as_view(),
         name="segment-export"),
    path("jobs/<int:job_id>/", jobs.JobDetailApi.as_view(), name="job"),
    path("audit/", audit.AuditListApi.as_view(), name="audit"),
    path("jobs/<int:job_id>/download/", transfers.ExportDownloadApi.as_view(),
         name="job-download"),
]

# People-goods matching (人货匹配): products, their tags, recommendations and audiences.
from tags.api import products  # noqa: E402

urlpatterns += [
    path("products/", products.ProductListCreateApi.as_view(), name="products"),
    path("products/<int:product_id>/", products.ProductDetailApi.as_view(), name="product"),
    path("products/<int:product_id>/tags/", products.ProductTagsApi.as_view(),
         name="product-tags"),
    path("products/<int:product_id>/tags/<int:tag_id>/", products.ProductTagDeleteApi.as_view(),
         name="product-tag"),
    path("products/<int:product_id>/audience/", products.ProductAudienceApi.as_view(),
         name="product-audience"),
    path("members/<int:member_id>/recommendations/",
         products.MemberRecommendationsApi.as_view(), name="member-recommendations"),
]

# Points: balances, ledger, earn / redeem / adjust, check-in, policy, liability.
from points.api import views as points  # noqa: E402

urlpatterns += [
    path("members/<int:member_id>/points/", points.MemberPointsApi.as_view(),
         name="member-points"),
    path("members/<int:member_id>/points/ledger/", points.MemberPointsLedgerApi.as_view(),
         name="member-points-ledger"),
    path("members/<int:member_id>/points/checkin/", points.MemberPointsCheckInApi.as_view(),
         name="member-points-checkin"),
    path("points/earn/", points.PointsEarnApi.as_view(), name="points-earn"),
    path("points/redeem/", points.PointsRedeemApi.as_view(), name="points-redeem"),
    path("points/batch/", points.PointsBatchApi.as_view(), name="points-batch"),
    path("points/adjust/", points.PointsAdjustApi.as_view(), name="points-adjust"),
    path("points/policy/", points.PointsPolicyApi.as_view(), name="points-policy"),
    path("points/liability/", points.PointsLiabilityApi.as_view(), name="points-liability"),
]

# The points mall (积分商城) and flash sales (积分秒杀).
from points.api import mall  # noqa: E402

urlpatterns += [
    path("mall/items/", mall.MallItemListCreateApi.as_view(), name="mall-items"),
    path("mall/items/<int:item_id>/", mall.MallItemDetailApi.as_view(), name="mall-item"),
    path("mall/flash-sales/", mall.FlashSaleListCreateApi.as_view(), name="mall-flash-sales"),
    path("mall/flash-sales/<int:sale_id>/", mall.FlashSaleDetailApi.as_view(),
         name="mall-flash-sale"),
    path("mall/redemptions/", mall.MallRedemptionListCreateApi.as_view(),
         name="mall-redemptions"),
    path("mall/redemptions/<int:redemption_id>/", mall.MallRedemptionDetailApi.as_view(),
         name="mall-redemption"),
    path("mall/redemptions/<int:redemption_id>/fulfil/",
         mall.MallRedemptionFulfilApi.as_view(), name="mall-redemption-fulfil"),
    path("mall/redemptions/<int:redemption_id>/cancel/",
         mall.MallRedemptionCancelApi.as_view(), name="mall-redemption-cancel"),
]

# Tiers (会员等级) and benefits.
from points.api import tiers  # noqa: E402

urlpatterns += [
    path("tiers/programs/", tiers.TierProgramListCreateApi.as_view(), name="tier-programs"),
    path("tiers/programs/<int:program_id>/", tiers.TierProgramDetailApi.as_view(),
         name="tier-program"),
    path("tiers/growth/", tiers.GrowthGrantApi.as_view(), name="tier-growth"),
    path("members/<int:member_id>/tier/", tiers.MemberTierApi.as_view(), name="member-tier"),
    path("members/<int:member_id>/tier/override/", tiers.MemberTierOverrideApi.as_view(),
         name="member-tier-override"),
    path("members/<int:member_id>/benefits/", tiers.MemberBenefitsApi.as_view(),
         name="member-benefits"),
]

# WeChat and WeCom: connections, syncs, tags, channel codes, transfers, loss alerts.
from integrations import api as integrations  # noqa: E402

urlpatterns += [
    path("integrations/oa-apps/", integrations.OAAppListCreateApi.as_view(), name="oa-apps"),
    path("integrations/oa-apps/<int:app_id>/check/", integrations.OAAppCheckApi.as_view(),
         name="oa-app-check"),
    path("integrations/oa-apps/<int:app_id>/sync/", integrations.OAAppSyncApi.as_view(),
         name="oa-app-sync"),
    path("integrations/oa-apps/<int:app_id>/tags/pull/", integrations.OAAppTagsPullApi.as_view(),
         name="oa-app-tags-pull"),
    path("integrations/oa-apps/<int:app_id>/tags/push/", integrations.OAAppTagPushApi.as_view(),
         name="oa-app-tag-push"),
    path("integrations/wecom-corps/<int:corp_id>/tags/mark/",
         integrations.WeComCorpTagMarkApi.as_view(), name="wecom-corp-tag-mark"),
    path("integrations/oa-apps/<int:app_id>/template-messages/",
         integrations.OAAppTemplateMessageApi.as_view(), name="oa-app-template-messages"),
    path("integrations/wecom-corps/<int:corp_id>/tags/push/",
         integrations.WeComCorpTagPushApi.as_view(), name="wecom-corp-tag-push"),
    path("integrations/wecom-corps/<int:corp_id>/mass-messages/",
         integrations.WeComMassMessageApi.as_view(), name="wecom-corp-mass-messages"),
    path("integrations/wecom-corps/", integrations.WeComCorpListCreateApi.as_view(),
         name="wecom-corps"),
    path("integrations/wecom-corps/<int:corp_id>/check/", integrations.WeComCorpCheckApi.as_view(),
         name="wecom-corp-check"),
    path("integrations/wecom-corps/<int:corp_id>/sync/", integrations.WeComCorpSyncApi.as_view(),
         name="wecom-corp-sync"),
    path("integrations/wecom-corps/<int:corp_id>/tags/pull/",
         integrations.WeComCorpTagsPullApi.as_view(), name="wecom-corp-tags-pull"),
    path("integrations/wecom-corps/<int:corp_id>/transfers/",
         integrations.WeComTransferApi.as_view(),
         name="wecom-corp-transfers"),
    path("integrations/channel-codes/", integrations.ChannelCodeListCreateApi.as_view(),
         name="channel-codes"),
    path("integrations/channel-codes/<int:code_id>/", integrations.ChannelCodeDetailApi.as_view(),
         name="channel-code"),
    path("integrations/loss-alerts/", integrations.LossAlertListApi.as_view(),
         name="loss-alerts"),
    path("integrations/loss-alerts/<int:alert_id>/ack/", integrations.LossAlertAckApi.as_view(),
         name="loss-alert-ack"),
    path("integrations/callbacks/", integrations.CallbackEventListApi.as_view(),
         name="callback-events"),
]

# Campaigns, their results and deliveries, automation rules, the contact policy.
from campaigns import api as campaigns  # noqa: E402

urlpatterns += [
    path("campaigns/", campaigns.CampaignListCreateApi.as_view(), name="campaigns"),
    path("campaigns/policy/", campaigns.ContactPolicyApi.as_view(), name="contact-policy"),
    path("campaigns/<int:campaign_id>/", campaigns.CampaignDetailApi.as_view(), name="campaign"),
    path("campaigns/<int:campaign_id>/launch/", campaigns.CampaignLaunchApi.as_view(),
         name="campaign-launch"),
    path("campaigns/<int:campaign_id>/pause/", campaigns.CampaignPauseApi.as_view(),
         name="campaign-pause"),
    path("campaigns/<int:campaign_id>/resume/", campaigns.CampaignResumeApi.as_view(),
         name="campaign-resume"),
    path("campaigns/<int:campaign_id>/cancel/", campaigns.CampaignCancelApi.as_view(),
         name="campaign-cancel"),
    path("campaigns/<int:campaign_id>/results/", campaigns.CampaignResultsApi.as_view(),
         name="campaign-results"),
    path("campaigns/<int:campaign_id>/deliveries/", campaigns.CampaignDeliveriesApi.as_view(),
         name="campaign-deliveries"),
    path("automations/", campaigns.AutomationListCreateApi.as_view(), name="automations"),
    path("automations/<int:rule_id>/", campaigns.AutomationDetailApi.as_view(),
         name="automation"),
]

# Coupons (优惠券): templates and their results, issuing, redemption, cancellation.
from campaigns.coupons.api import views as coupons  # noqa: E402

urlpatterns += [
    path("coupons/templates/", coupons.CouponTemplateListCreateApi.as_view(),
         name="coupon-templates"),
    path("coupons/templates/<int:template_id>/", coupons.CouponTemplateDetailApi.as_view(),
         name="coupon-template"),
    path("coupons/issue/", coupons.CouponIssueApi.as_view(), name="coupons-issue"),
    path("coupons/redeem/", coupons.CouponRedeemApi.as_view(), name="coupons-redeem"),
    path("coupons/", coupons.CouponListApi.as_view(), name="coupons"),
    path("coupons/<str:code>/", coupons.CouponDetailApi.as_view(), name="coupon"),
    path("coupons/<str:code>/cancel/", coupons.CouponCancelApi.as_view(), name="coupon-cancel"),
    path("members/<int:member_id>/coupons/", coupons.MemberCouponListApi.as_view(),
         name="member-coupons"),
]

# RFM (segments, runs, movement) and lifecycle stages.
from campaigns.rfm import api as rfm  # noqa: E402

urlpatterns += [
    path("rfm/config/", rfm.RfmConfigApi.as_view(), name="rfm-config"),
    path("rfm/runs/", rfm.RfmRunListCreateApi.as_view(), name="rfm-runs"),
    path("rfm/runs/<int:run_id>/", rfm.RfmRunDetailApi.as_view(), name="rfm-run"),
    path("rfm/movement/", rfm.RfmMovementApi.as_view(), name="rfm-movement"),
    path("rfm/movement/members/", rfm.RfmMovementMembersApi.as_view(),
         name="rfm-movement-members"),
    path("members/<int:member_id>/rfm/", rfm.MemberRfmApi.as_view(), name="member-rfm"),
    path("lifecycle/config/", rfm.LifecycleConfigApi.as_view(), name="lifecycle-config"),
    path("lifecycle/funnel/", rfm.LifecycleFunnelApi.as_view(), name="lifecycle-funnel"),
]

# Referrals (裂变): campaigns, invites, the KOC leaderboard, attributions; lotteries (抽奖).
from campaigns.referrals.api import lotteries, referrals  # noqa: E402

urlpatterns += [
    path("referrals/", referrals.ReferralListCreateApi.as_view(), name="referrals"),
    path("referrals/<int:campaign_id>/", referrals.ReferralDetailApi.as_view(), name="referral"),
    path("referrals/<int:campaign_id>/invites/", referrals.ReferralInviteApi.as_view(),
         name="referral-invites"),
    path("referrals/<int:campaign_id>/leaderboard/", referrals.ReferralLeaderboardApi.as_view(),
         name="referral-leaderboard"),
    path("referrals/<int:campaign_id>/attributions/",
         referrals.ReferralAttributionListApi.as_view(), name="referral-attributions"),
    path("referrals/<int:campaign_id>/attributions/<int:attribution_id>/review/",
         referrals.ReferralAttributionReviewApi.as_view(), name="referral-attribution-review"),
    path("lotteries/", lotteries.LotteryListCreateApi.as_view(), name="lotteries"),
    path("lotteries/<int:lottery_id>/", lotteries.LotteryDetailApi.as_view(), name="lottery"),
    path("lotteries/<int:lottery_id>/draws/", lotteries.LotteryDrawApi.as_view(),
         name="lottery-draws"),
    path("lotteries/<int:lottery_id>/codes/", lotteries.LotteryCodesApi.as_view(),
         name="lottery-codes"),
]

urlpatterns += [
    path("imports/", transfers.ImportUploadApi.as_view(), name="imports"),
    path("imports/<int:upload_id>/", transfers.ImportDetailApi.as_view(), name="import"),
    path("imports/<int:upload_id>/mapping/", transfers.ImportMappingApi.as_view(),
         name="import-mapping"),
    path("imports/<int:upload_id>/dry-run/", transfers.ImportDryRunApi.as_view(),
         name="import-dry-run"),
    path("imports/<int:upload_id>/report/", transfers.ImportReportApi.as_view(),
         name="import-report"),
    path("imports/<int:upload_id>/report.csv", transfers.ImportReportCsvApi.as_view(),
         name="import-report-csv"),
    path("imports/<int:upload_id>/start/", transfers.ImportStartApi.as_view(),
         name="import-start"),
    path("exports/", transfers.ExportCreateApi.as_view(), name="exports"),
    path("exports/<int:job_id>/", transfers.ExportDetailApi.as_view(), name="export"),
    path("exports/<int:job_id>/link/", transfers.ExportLinkApi.as_view(), name="export-link"),
]

# Outbound webhooks: endpoints, test pings, the delivery log and replays.
from integrations.webhooks import api as webhooks  # noqa: E402

urlpatterns += [
    path("webhooks/endpoints/", webhooks.WebhookEndpointListCreateApi.as_view(),
         name="webhook-endpoints"),
    path("webhooks/endpoints/<int:endpoint_id>/", webhooks.WebhookEndpointDetailApi.as_view(),
         name="webhook-endpoint"),
    path("webhooks/endpoints/<int:endpoint_id>/rotate-secret/",
         webhooks.WebhookEndpointRotateSecretApi.as_view(), name="webhook-endpoint-rotate"),
    path("webhooks/endpoints/<int:endpoint_id>/ping/", webhooks.WebhookEndpointPingApi.as_view(),
         name="webhook-endpoint-ping"),
    path("webhooks/endpoints/<int:endpoint_id>/replay/",
         webhooks.WebhookEndpointReplayApi.as_view(), name="webhook-endpoint-replay"),
    path("webhooks/deliveries/", webhooks.WebhookDeliveryListApi.as_view(),
         name="webhook-deliveries"),
    path("webhooks/deliveries/<int:delivery_id>/replay/",
         webhooks.WebhookDeliveryReplayApi.as_view(), name="webhook-delivery-replay"),
]
