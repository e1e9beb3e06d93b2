"""HTML views of the tenancy shell: sign-in, the dashboard's frame, staff and API keys,
background jobs, switching tenants."""

from scrm.views.tenants import tenant_switch

__all__ = ["tenant_switch"]
