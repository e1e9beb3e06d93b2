"""Importing this module registers every endpoint in ``wire.ROUTES``."""

from . import (  # noqa: F401
    mp,
    mp_messages,
    oauth,
    work,
    work_messages,
    work_oauth,
    work_transfer,
)
