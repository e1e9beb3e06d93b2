"""Who a background job acts for: the staff member or API key that queued it, with the scopes
they had then (a guide's export holds only their own customers)."""

from scrm.access import Actor
from scrm.models import ApiKey, StaffMembership, Tenant


def actor_params(actor: Actor) -> dict:
    return {"membership_id": actor.membership.pk if actor.membership else None,
            "api_key_id": actor.api_key.pk if actor.api_key else None,
            "scopes": sorted(actor.scopes)}


def job_actor(*, tenant_id: int, params: dict) -> Actor:
    membership = api_key = None
    if params.get("membership_id"):
        membership = StaffMembership.objects.filter(pk=params["membership_id"]).first()
    if params.get("api_key_id"):
        api_key = ApiKey.objects.filter(pk=params["api_key_id"]).first()
    tenant = Tenant.objects.get(pk=tenant_id)
    return Actor(tenant=tenant, scopes=frozenset(params.get("scopes", ())),
                 membership=membership, api_key=api_key)
