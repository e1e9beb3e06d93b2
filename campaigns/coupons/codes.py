"""Coupon codes: 12 characters from an alphabet without look-alikes (no 0/O, 1/I), drawn
from ``secrets``: 60 bits each, so guessing one is hopeless and two codes of one tenant
collide about once in 10^12 issues (the unique constraint catches it; the issue retries).

32 symbols means a random byte's low five bits pick one without bias, so a whole batch is
one ``token_bytes`` call and one ``bytes.translate``: a million codes in a fraction of a
second."""

import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 12
_SYMBOLS = bytes(ord(ALPHABET[byte & 31]) for byte in range(256))
_TYPING = str.maketrans("", "", " -")


def codes_generate(count: int) -> list[str]:
    text = secrets.token_bytes(count * CODE_LENGTH).translate(_SYMBOLS).decode("ascii")
    return [text[at:at + CODE_LENGTH] for at in range(0, len(text), CODE_LENGTH)]


def code_normalize(code: str) -> str:
    """What a cashier types or a scanner reads, as stored: capitals, no spaces or dashes."""
    return code.translate(_TYPING).upper()
