"""The current tenant, carried in a context variable.

Middleware (sessions, API keys), Celery task wrappers and management commands set it; the
tenant-scoped manager filters by it and the PostgreSQL backend copies it into the
``scrm.tenant_id`` setting that the row-level security policies read.  Code that must see
every tenant says so with ``unscoped_access(reason)``.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger("scrm.tenancy")

_tenant_id: ContextVar[int | None] = ContextVar("scrm_tenant_id", default=None)
_bypass: ContextVar[str | None] = ContextVar("scrm_rls_bypass", default=None)

class TenantScopeError(RuntimeError):
    """A tenant-owned table was queried without a tenant in context."""


def current_tenant_id() -> int | None:
    return _tenant_id.get()


def require_tenant_id() -> int:
    tenant_id = _tenant_id.get()
    if tenant_id is None:
        raise TenantScopeError("no tenant in context; use tenant_scope() or unscoped_access()")
    return tenant_id


def is_unscoped() -> bool:
    return _bypass.get() is not None


@contextmanager
def tenant_scope(tenant: Any) -> Iterator[int]:
    """Run the block as ``tenant`` (a Tenant or its id)."""
    tenant_id = int(getattr(tenant, "pk", tenant))
    token = _tenant_id.set(tenant_id)
    bypass_token = _bypass.set(None)
    try:
        yield tenant_id
    finally:
        _bypass.reset(bypass_token)
        _tenant_id.reset(token)


@contextmanager
def unscoped_access(reason: str) -> Iterator[None]:
    """Cross-tenant access for platform code; logged, and lifts row-level security too."""
    logger.info("unscoped access: %s", reason)
    token = _bypass.set(reason)
    try:
        yield
    finally:
        _bypass.reset(token)


def rls_settings() -> tuple[str, str]:
    """The values for the ``scrm.tenant_id`` and ``scrm.rls_bypass`` settings."""
    tenant_id = _tenant_id.get()
    return ("" if tenant_id is None else str(tenant_id), "on" if is_unscoped() else "")
