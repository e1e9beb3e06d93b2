import pickle

from django.core.cache import cache

from scrm.memo import MISSING, LocalMemo
from scrm.models import ApiKey

# Every API request looks its key up.  The shared cache (Redis) answers instead of the
# database; revoking or deleting a key, or editing its tenant in the admin, replaces the
# entry with a tombstone at once, so API_KEY_CACHE_SECONDS only bounds changes made outside
# those services (a tenant switched off in the database).  Each process also remembers what
# it read for a couple of seconds: that is how late another process notices a revocation.
API_KEY_CACHE_SECONDS = 60
_TOMBSTONE = "forgotten"
_memo = LocalMemo(seconds=2)


def _api_key_cache_key(prefix: str) -> str:
    return f"api_key:{prefix}"


def api_key_active_get(*, prefix: str) -> ApiKey | None:
    """The unrevoked key with ``prefix`` of an active tenant, with its tenant."""
    pickled = _memo.get(prefix)
    if pickled is not MISSING:
        # Pickled by this process; unpickled, each request gets an instance of its own.
        return pickle.loads(pickled)  # noqa: S301
    api_key = _api_key_shared_get(prefix)
    if api_key is not None:
        _memo.put(prefix, pickle.dumps(api_key))
    return api_key


def _api_key_shared_get(prefix: str) -> ApiKey | None:
    cache_key = _api_key_cache_key(prefix)
    cached = cache.get(cache_key)
    if isinstance(cached, ApiKey):
        return cached
    api_key = (
        ApiKey.objects.select_related("tenant")
        .filter(prefix=prefix, revoked_at__isnull=True, tenant__is_active=True)
        .first()
    )
    # ``add`` never overwrites a tombstone: a lookup that read the key just before it was
    # revoked cannot put the stale row back.
    if api_key is not None and cached is None:
        cache.add(cache_key, api_key, API_KEY_CACHE_SECONDS)
    return api_key


def api_keys_forget(*, prefixes: list[str]) -> None:
    for prefix in prefixes:
        _memo.forget(prefix)
    cache.set_many(
        {_api_key_cache_key(prefix): _TOMBSTONE for prefix in prefixes}, API_KEY_CACHE_SECONDS
    )
