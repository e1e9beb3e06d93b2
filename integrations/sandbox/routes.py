"""Importing this module registers every endpoint in ``wire.ROUTES``."""

from . import mp, mp_messages, oauth, work, work_messages, work_transfer  # noqa: F401
