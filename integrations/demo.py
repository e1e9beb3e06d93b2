"""The demo tenant's WeChat side: its OA and WeCom corp connected to the local sandbox
(``make demo`` starts it), followers, guides, customers and groups synced from it, and two
channel codes.  Skipped, with a note, when the sandbox does not answer."""

import logging

import requests
from django.conf import settings

from integrations.models import ChannelCode
from integrations.sandbox import fixtures as sandbox_demo
from integrations.services.channels import channel_code_create
from integrations.services.connections import oa_app_connect, wecom_corp_connect
from integrations.services.followers import followers_sync_run, followers_sync_start
from integrations.services.wecom import wecom_sync_run, wecom_sync_start
from scrm.access import ALL_SCOPES, Actor
from scrm.jobs import job_run
from scrm.models import Role, StaffMembership, Store, Tenant

logger = logging.getLogger(__name__)


def sandbox_available() -> bool:
    base = settings.WECHAT_API_BASE_URL
    if not base:
        return False
    try:
        return requests.get(f"{base.rstrip('/')}/__fake__/health", timeout=2).ok
    except requests.RequestException:
        return False


def wechat_demo_seed(*, tenant: Tenant) -> str:
    """Inside the demo tenant's scope; returns what it did, for the command to print."""
    if not sandbox_available():
        return "WeChat sandbox not running: OA and WeCom left unconnected"
    actor = Actor(tenant=tenant, scopes=frozenset(ALL_SCOPES))
    app = oa_app_connect(actor=actor, appid=sandbox_demo.DEMO_MP_APPID,
                         secret=sandbox_demo.DEMO_MP_SECRET, name="兰亭美妆服务号",
                         token=sandbox_demo.DEMO_MP_TOKEN,
                         aes_key=sandbox_demo.DEMO_MP_AES_KEY, original_id="gh_f00d00000001")
    corp = wecom_corp_connect(actor=actor, corpid=sandbox_demo.DEMO_CORPID,
                              secret=sandbox_demo.DEMO_CONTACT_SECRET, name="兰亭美妆",
                              token=sandbox_demo.DEMO_WORK_TOKEN,
                              aes_key=sandbox_demo.DEMO_WORK_AES_KEY,
                              agent_id=str(sandbox_demo.DEMO_AGENTID))
    # The demo's guide login is WeCom member guide001.
    StaffMembership.objects.filter(tenant=tenant, role=Role.GUIDE).update(
        wecom_userid="guide001")
    for start, run, kwargs in ((followers_sync_start, followers_sync_run, {"app": app}),
                               (wecom_sync_start, wecom_sync_run, {"corp": corp})):
        job = start(actor=actor, enqueue=False, **kwargs)
        job_run(tenant_id=tenant.pk, job_id=job.pk, runner=run)
    store = Store.objects.order_by("pk").first()
    channel_code_create(actor=actor, kind=ChannelCode.Kind.OA_QR, name="门店收银台海报",
                        oa_app=app, channel="门店", store=store,
                        welcome_text="欢迎关注兰亭美妆！回复“会员”查看您的会员卡。")
    channel_code_create(actor=actor, kind=ChannelCode.Kind.WECOM_CONTACT, name="导购一对一码",
                        corp=corp, channel="门店", store=store, guide_userids=["guide001"],
                        welcome_text="您好，我是您的专属美妆顾问，有任何问题随时找我～")
    return "OA and WeCom connected to the sandbox and synced"
