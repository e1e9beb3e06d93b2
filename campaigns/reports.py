"""The campaigns panel's whole-tenant report, registered with the dashboard's report cache
(``scrm.reports``): the latest campaigns that have left the draft stage, with results."""

from campaigns.models import Campaign
from campaigns.services.results import campaign_results
from scrm.access import Actor
from scrm.reports import report_register

PANEL_CAMPAIGNS = 5


def with_results(campaigns) -> list[dict]:
    return [{"campaign": campaign, "results": campaign_results(campaign=campaign)}
            for campaign in campaigns]


def campaigns_report(*, actor: Actor) -> list[dict]:
    return with_results(Campaign.objects.exclude(status=Campaign.Status.DRAFT).order_by(
        "-pk")[:PANEL_CAMPAIGNS])


def register() -> None:
    report_register(name="campaigns", compute=campaigns_report)
