"""Who is acting, and what they may do: roles and API keys map onto one set of scopes."""

from dataclasses import dataclass, field

from scrm.models import ApiKey, Role, StaffMembership, Tenant

MEMBERS_READ = "members:read"
MEMBERS_WRITE = "members:write"
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"
PII_READ = "pii:read"
STAFF_MANAGE = "staff:manage"
TAGS_MANAGE = "tags:manage"
SEGMENTS_WRITE = "segments:write"
POINTS_READ = "points:read"
POINTS_WRITE = "points:write"  # earn, redeem, check-in
POINTS_ADJUST = "points:adjust"  # manual corrections, audited
POINTS_MANAGE = "points:manage"  # the points policy
INTEGRATIONS_READ = "integrations:read"  # connections' state, channel codes, loss alerts
INTEGRATIONS_MANAGE = "integrations:manage"  # connect accounts, sync, codes, transfers
COUPONS_READ = "coupons:read"
COUPONS_MANAGE = "coupons:manage"  # templates, issuing, cancelling
COUPONS_REDEEM = "coupons:redeem"  # redeeming at checkout
CAMPAIGNS_READ = "campaigns:read"  # campaigns, their results, automations
CAMPAIGNS_MANAGE = "campaigns:manage"  # create, launch, pause campaigns and automations
IMPORTS_WRITE = "imports:write"  # upload and run imports of members and orders
EXPORTS_CREATE = "exports:create"  # export members, orders, the points ledger
AUDIT_READ = "audit:read"  # search the audit log (owners)
PRIVACY_MANAGE = "privacy:manage"  # export or erase a member's personal data (owners)
WEBHOOKS_READ = "webhooks:read"  # webhook endpoints and their delivery log
WEBHOOKS_MANAGE = "webhooks:manage"  # create, change, delete endpoints; replay deliveries

ALL_SCOPES = (MEMBERS_READ, MEMBERS_WRITE, ORDERS_READ, ORDERS_WRITE, PII_READ, TAGS_MANAGE,
              SEGMENTS_WRITE, POINTS_READ, POINTS_WRITE, POINTS_ADJUST, POINTS_MANAGE,
              INTEGRATIONS_READ, INTEGRATIONS_MANAGE, CAMPAIGNS_READ, CAMPAIGNS_MANAGE,
              COUPONS_READ, COUPONS_MANAGE, COUPONS_REDEEM, IMPORTS_WRITE, EXPORTS_CREATE,
              WEBHOOKS_READ, WEBHOOKS_MANAGE)
# Owners' own scopes: no other role has them; an API key has them only when asked for.
OWNER_SCOPES = (STAFF_MANAGE, AUDIT_READ, PRIVACY_MANAGE)
GRANTABLE_SCOPES = (*ALL_SCOPES, AUDIT_READ, PRIVACY_MANAGE)

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset((*ALL_SCOPES, *OWNER_SCOPES)),
    Role.BRAND_OPERATOR: frozenset(ALL_SCOPES),
    Role.CHANNEL_OPERATOR: frozenset((MEMBERS_READ, MEMBERS_WRITE, ORDERS_READ, TAGS_MANAGE,
                                      SEGMENTS_WRITE, POINTS_READ, INTEGRATIONS_READ,
                                      INTEGRATIONS_MANAGE, CAMPAIGNS_READ, CAMPAIGNS_MANAGE,
                                      COUPONS_READ, COUPONS_MANAGE, WEBHOOKS_READ)),
    Role.STORE_MANAGER: frozenset((MEMBERS_READ, MEMBERS_WRITE, ORDERS_READ, ORDERS_WRITE,
                                   POINTS_READ, POINTS_WRITE, INTEGRATIONS_READ, COUPONS_READ,
                                   COUPONS_REDEEM)),
    Role.GUIDE: frozenset((MEMBERS_READ, MEMBERS_WRITE, ORDERS_READ, POINTS_READ,
                           INTEGRATIONS_READ, COUPONS_READ, COUPONS_REDEEM)),
    Role.CUSTOMER_SERVICE: frozenset((MEMBERS_READ, MEMBERS_WRITE, ORDERS_READ, PII_READ,
                                      POINTS_READ, POINTS_ADJUST)),
    Role.ANALYST: frozenset((MEMBERS_READ, ORDERS_READ, POINTS_READ, INTEGRATIONS_READ,
                             CAMPAIGNS_READ, COUPONS_READ, EXPORTS_CREATE)),
}


@dataclass(frozen=True)
class Actor:
    tenant: Tenant
    scopes: frozenset[str] = field(default_factory=frozenset)
    membership: StaffMembership | None = None
    api_key: ApiKey | None = None

    @classmethod
    def for_membership(cls, membership: StaffMembership) -> "Actor":
        return cls(
            tenant=membership.tenant, scopes=ROLE_SCOPES[membership.role], membership=membership
        )

    @classmethod
    def for_api_key(cls, api_key: ApiKey) -> "Actor":
        return cls(tenant=api_key.tenant, scopes=frozenset(api_key.scopes), api_key=api_key)

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def guide_id(self) -> int | None:
        """Set when the actor is a shopping guide: they see only their own customers."""
        if self.membership and self.membership.role == Role.GUIDE:
            return self.membership.pk
        return None

    @property
    def store_id(self) -> int | None:
        """Set when the actor is a store manager: they see only their store's members."""
        if self.membership and self.membership.role == Role.STORE_MANAGER:
            return self.membership.store_id
        return None

    @property
    def label(self) -> str:
        if self.membership:
            return f"staff:{self.membership.pk}"
        if self.api_key:
            return f"api_key:{self.api_key.prefix}"
        return "system"
