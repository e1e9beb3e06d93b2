"""Where invite QR codes come from.  Making one is the WeChat integration's job (an OA
parametric QR code); it registers a provider here at start-up, so this app never imports
it (``integrations/referral_qr.py``)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from campaigns.referrals.models import ReferralCampaign, ReferralInvite
    from scrm.access import Actor


@dataclass(frozen=True)
class InviteQr:
    ticket: str
    url: str  # what the QR code says
    image_url: str  # where the picture is
    expires_at: datetime | None  # None: permanent
    channel_code_id: int | None = None


class InviteQrProvider(Protocol):
    def __call__(self, *, actor: "Actor", invite: "ReferralInvite",
                 campaign: "ReferralCampaign", scene: str,
                 expire_seconds: int | None) -> InviteQr:
        """Make a QR code carrying ``scene``: temporary for ``expire_seconds`` (at most 30
        days), or permanent when None.  Raises ``ApplicationError`` with a clear code when
        it cannot (no OA connected, WeChat refused)."""
        ...


_providers: list[Callable[..., InviteQr]] = []


def invite_qr_provider_register(provider: Callable[..., InviteQr]) -> None:
    """Register the provider (the last one registered wins)."""
    if provider not in _providers:
        _providers.append(provider)


def invite_qr_provider() -> Callable[..., InviteQr] | None:
    return _providers[-1] if _providers else None
