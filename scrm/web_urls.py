"""The operator dashboard and the guide's phone view: every HTML page, in namespace ``web``.
Each app serves its own pages and sections; this module only puts them together.  The
screens of capabilities still landing (RFM, coupons, referrals) are added when their modules
are there; the menu, the dashboard and the member page leave out what does not resolve."""

from importlib.util import find_spec

from django.contrib.auth.views import LogoutView
from django.urls import path

from integrations import views as wechat
from integrations.transfers import views as transfers
from members.views import guide, operator
from points.views import pages as loyalty
from scrm.views import auth, security, settings_pages
from tags.views import dashboard as tag_dashboard
from tags.views import members as tag_members
from tags.views import segments, taxonomy

app_name = "web"

urlpatterns = [
    path("", auth.home, name="home"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("login/verify/", security.two_factor_verify, name="two-factor-verify"),
    path("account/security/", security.account_security, name="account-security"),
    path("dashboard/", auth.dashboard, name="dashboard"),
    path("dashboard/panels/members/", tag_dashboard.panel_members, name="panel-members"),
    path("jobs/", settings_pages.job_list, name="jobs"),
    path("jobs/<int:job_id>/", settings_pages.job_row, name="jobs-row"),
    path("settings/staff/", settings_pages.staff_list, name="staff"),
    path("settings/staff/<int:staff_id>/", settings_pages.staff_edit, name="staff-edit"),
    path("settings/staff/<int:staff_id>/unlock/", security.staff_unlock, name="staff-unlock"),
    path("settings/api-keys/", settings_pages.api_key_list, name="api-keys"),
    path("settings/api-keys/<int:key_id>/revoke/", settings_pages.api_key_revoke,
         name="api-keys-revoke"),
    path("settings/audit/", settings_pages.audit_log, name="audit-log"),
    # Members
    path("members/", tag_members.member_list_page, name="members"),
    path("members/<int:member_id>/", operator.member_detail, name="members-detail"),
    path("members/<int:member_id>/phone/", operator.member_phone, name="members-phone"),
    path("members/<int:member_id>/notes/", operator.member_note, name="members-note"),
    path("members/<int:member_id>/consents/", operator.member_consent, name="members-consent"),
    path("members/<int:member_id>/personal-data/", operator.member_personal_data_download,
         name="members-personal-data"),
    path("members/<int:member_id>/erase/", operator.member_erase_page, name="members-erase"),
    path("members/<int:member_id>/tags/", tag_members.member_tags, name="member-tags"),
    path("members/<int:member_id>/tags/toggle/", tag_members.member_tag_toggle,
         name="member-tags-toggle"),
    # Audiences and tags
    path("segments/", segments.segment_list, name="segments"),
    path("segments/new/", segments.segment_edit, name="segments-new"),
    path("segments/count/", segments.segment_count, name="segments-count"),
    path("segments/<int:segment_id>/", segments.segment_edit, name="segments-edit"),
    path("segments/<int:segment_id>/members/", segments.segment_members,
         name="segments-members"),
    path("segments/<int:segment_id>/export/", transfers.segment_export, name="segments-export"),
    path("tags/", taxonomy.tag_index, name="tags"),
    path("tags/new/", taxonomy.tag_edit, name="tags-new"),
    path("tags/groups/new/", taxonomy.tag_group_create, name="tags-group-new"),
    path("tags/rule-preview/", segments.rule_preview, name="tags-rule-preview"),
    path("tags/<int:tag_id>/", taxonomy.tag_edit, name="tags-edit"),
    # Loyalty
    path("dashboard/panels/loyalty/", loyalty.panel_loyalty, name="panel-loyalty"),
    path("members/<int:member_id>/points/", loyalty.member_points, name="member-points"),
    path("loyalty/tiers/", loyalty.tier_list, name="tiers"),
    path("loyalty/policy/", loyalty.points_policy, name="points-policy"),
    path("loyalty/mall/", loyalty.mall_page, name="mall"),
    # WeChat and WeCom
    path("dashboard/panels/channels/", wechat.panel_channels, name="panel-channels"),
    path("members/<int:member_id>/wechat/", wechat.member_wechat, name="member-wechat"),
    path("integrations/", wechat.connection_list, name="integrations"),
    path("integrations/<str:kind>/connect/", wechat.connection_save, name="integrations-save"),
    path("integrations/<str:kind>/<int:connection_id>/check/", wechat.connection_check,
         name="integrations-check"),
    path("integrations/<str:kind>/<int:connection_id>/sync/", wechat.connection_sync,
         name="integrations-sync"),
    path("integrations/<str:kind>/<int:connection_id>/row/", wechat.connection_row,
         name="integrations-row"),
    path("channels/", wechat.channel_list, name="channels"),
    path("channels/<int:code_id>/", wechat.channel_detail, name="channels-detail"),
    path("guide/tasks/contacts/", wechat.guide_task_contacts, name="guide-task-contacts"),
    # Imports and exports
    path("imports/", transfers.import_list, name="imports"),
    path("imports/<int:upload_id>/", transfers.import_detail, name="imports-detail"),
    path("imports/<int:upload_id>/report.csv", transfers.import_report, name="imports-report"),
    path("exports/", transfers.export_list, name="exports"),
    path("exports/download/<str:token>/", transfers.export_download, name="exports-download"),
    # The guide's phone view
    path("guide/", guide.guide_home, name="guide"),
    path("guide/login/", auth.LoginView.as_view(guide=True), name="guide-login"),
    path("guide/tasks/", guide.guide_tasks, name="guide-tasks"),
    path("guide/performance/", guide.guide_performance, name="guide-performance"),
    path("guide/customers/<int:member_id>/", guide.guide_customer, name="guide-customer"),
    path("guide/customers/<int:member_id>/tags/", tag_members.guide_member_tags,
         name="guide-member-tags"),
]


def _landed(*modules: str) -> bool:
    return all(find_spec(module) is not None for module in modules)


if _landed("campaigns.rfm.selectors"):
    from campaigns.rfm import views as rfm

    urlpatterns += [
        path("dashboard/panels/rfm/", rfm.panel_rfm, name="panel-rfm"),
        path("members/<int:member_id>/rfm/", rfm.member_rfm, name="member-rfm"),
    ]

if _landed("campaigns.coupons.selectors", "campaigns.coupons.services",
           "campaigns.referrals.selectors"):
    from campaigns import views as campaigns
    from campaigns.coupons import views as coupon_pages

    urlpatterns += [
        path("dashboard/panels/campaigns/", campaigns.panel_campaigns, name="panel-campaigns"),
        path("campaigns/", campaigns.campaign_list, name="campaigns"),
        path("campaigns/new/", campaigns.campaign_new, name="campaigns-new"),
        path("campaigns/review/", campaigns.campaign_review, name="campaigns-review"),
        path("campaigns/<int:campaign_id>/", campaigns.campaign_detail, name="campaigns-detail"),
        path("campaigns/<int:campaign_id>/launch/", campaigns.campaign_start,
             name="campaigns-start"),
        path("automations/", campaigns.automation_list, name="automations"),
        path("automations/new/", campaigns.automation_edit, name="automations-new"),
        path("automations/<int:rule_id>/", campaigns.automation_edit, name="automations-edit"),
        path("referrals/", campaigns.referral_list, name="referrals"),
        path("coupons/", campaigns.coupon_list, name="coupons"),
        path("coupons/<int:template_id>/", coupon_pages.coupon_template_edit,
             name="coupons-edit"),
        path("members/<int:member_id>/coupons/", coupon_pages.member_coupons,
             name="member-coupons"),
        path("members/<int:member_id>/coupons/send/", coupon_pages.member_coupon_send,
             name="member-coupons-send"),
        path("members/<int:member_id>/referral-link/", coupon_pages.member_referral_link,
             name="member-referral-link"),
        path("guide/tasks/coupons/", coupon_pages.guide_task_coupons, name="guide-task-coupons"),
    ]

# Outbound webhooks (设置 → Webhook 推送)
from integrations.webhooks.urls import urlpatterns as webhook_pages  # noqa: E402

urlpatterns += webhook_pages
