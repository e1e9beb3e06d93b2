"""Personal data at rest: Fernet encryption (rotatable keys) and an HMAC blind index."""

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def _fernet_key(secret: str) -> bytes:
    # Accept real Fernet keys as given; derive one from any other secret string.
    try:
        if len(base64.urlsafe_b64decode(secret.encode())) == 32:
            return secret.encode()
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


@cache
def _cipher() -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(key)) for key in settings.FIELD_ENCRYPTION_KEYS])


def encrypt(value: str) -> str:
    return _cipher().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _cipher().decrypt(token.encode()).decode()


def blind_index(value: str) -> str:
    """A keyed hash that finds a value without storing it (equal inputs, equal outputs)."""
    key = settings.BLIND_INDEX_KEY.encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
