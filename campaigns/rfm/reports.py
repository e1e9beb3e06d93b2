"""The RFM panel's whole-tenant report, registered with the dashboard's report cache
(``scrm.reports``): the latest run's matrix and the lifecycle funnel."""

from campaigns.rfm import selectors
from campaigns.rfm.codes import SEGMENT_NAMES, Segment
from campaigns.rfm.models import RfmRun
from scrm.access import Actor
from scrm.reports import report_register


def rfm_report(*, actor: Actor) -> dict:
    run = RfmRun.objects.filter(status=RfmRun.Status.SUCCEEDED).order_by("-pk").first()
    funnel = selectors.lifecycle_funnel()
    if run is None:
        return {"run": None, "funnel": funnel}
    cells = [{"code": code, "name": SEGMENT_NAMES[code], "count": run.counts.get(code, 0),
              "important": code.startswith("important")} for code in Segment.values]
    return {"run": {"as_of": run.as_of, "members": run.members, "scored": run.scored},
            "cells": cells, "funnel": funnel}


def register() -> None:
    report_register(name="rfm", compute=rfm_report)
