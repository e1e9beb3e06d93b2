"""Deterministic randomness and the platform id formats.

Everything random in the sandbox comes from here, seeded, so one seed and one call sequence
give byte-identical output.  Ids of generated records (openids, unionids, external_userids)
are *reversible*: an AES-ECB permutation of the record's index, so a million followers need no
dictionary to map an openid back to its row.  A foreign id fails the embedded check and
decodes to ``None``.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
import struct
import threading

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

B64URL = string.ascii_letters + string.digits + "-_"
HEX = "0123456789abcdef"
_PAIR = struct.Struct(">QQ")
_MASK64 = (1 << 64) - 1


def derive(seed: int, *parts: object) -> bytes:
    text = ":".join(str(p) for p in (seed, *parts))
    return hashlib.sha256(text.encode()).digest()


def mix64(seed_word: int, index: int, salt: int = 0) -> int:
    """splitmix64 of (seed, index, salt): a cheap per-row deterministic hash."""
    z = (seed_word + index * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def unit(seed_word: int, index: int, salt: int = 0) -> float:
    return mix64(seed_word, index, salt) / 18446744073709551616.0


class Rng:
    """One seeded stream.  The sandbox keeps separate streams per purpose (ids, crypto,
    faults) so that turning a fault on does not change every later id."""

    def __init__(self, seed: int, purpose: str):
        self._random = random.Random(int.from_bytes(derive(seed, "rng", purpose)[:8], "big"))  # noqa: S311 - a test double needs reproducible, not secure, randomness

    def chars(self, n: int, alphabet: str = B64URL) -> str:
        return "".join(self._random.choices(alphabet, k=n))

    def hex(self, n: int) -> str:
        return self.chars(n, HEX)

    def digits(self, n: int) -> str:
        first = self._random.choice("123456789")
        return first + self.chars(n - 1, string.digits)

    def bytes(self, n: int) -> bytes:
        return self._random.getrandbits(8 * n).to_bytes(n, "big")

    def integer(self, low: int, high: int) -> int:
        return self._random.randint(low, high)

    def chance(self, p: float) -> bool:
        return self._random.random() < p

    def choice(self, items):
        return self._random.choice(items)


class IdCodec:
    """``prefix + base64url(tag || AES_k(check || index))``: 24 characters after the prefix.

    The constant tag makes ids of one namespace share their first characters, as real
    openids of one account do."""

    def __init__(self, seed: int, namespace: str, prefix: str):
        key = derive(seed, "codec", namespace)
        self.prefix = prefix
        self._check = int.from_bytes(key[16:24], "big")
        self._tag = key[24:26]
        cipher = Cipher(algorithms.AES(key[:16]), modes.ECB())  # noqa: S305 - a keyed permutation of ids, not message encryption
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()
        self._lock = threading.Lock()  # cipher contexts are not shareable between threads
        self._length = len(prefix) + 24

    def encode(self, index: int) -> str:
        return self.encode_many([index])[0]

    def encode_many(self, indexes) -> list[str]:
        pack, check, tag = _PAIR.pack, self._check, self._tag
        plain = b"".join(pack(check, i) for i in indexes)
        with self._lock:
            ct = self._enc.update(plain)
        joined = b"".join(tag + ct[k:k + 16] for k in range(0, len(ct), 16))
        text = base64.urlsafe_b64encode(joined).decode("ascii")
        prefix = self.prefix
        return [prefix + text[k:k + 24] for k in range(0, len(text), 24)]

    def decode_many(self, values: list) -> list[int | None]:
        """Batch ``decode``: one base64 and one AES call for well-formed ids."""
        n = len(self.prefix)
        shaped = [isinstance(v, str) and len(v) == self._length and v[:n] == self.prefix
                  for v in values]
        good = [v[n:] for v, ok in zip(values, shaped, strict=True) if ok]
        try:
            raw = base64.b64decode("".join(good), altchars=b"-_", validate=True)
        except (ValueError, TypeError):
            return [self.decode(v) for v in values]
        if len(raw) != 18 * len(good):
            return [self.decode(v) for v in values]
        blocks = b"".join(raw[k + 2:k + 18] for k in range(0, len(raw), 18))
        with self._lock:
            plain = self._dec.update(blocks)
        tags_ok = [raw[k:k + 2] == self._tag for k in range(0, len(raw), 18)]
        out: list[int | None] = []
        position = 0
        unpack, check = _PAIR.unpack_from, self._check
        for ok in shaped:
            if not ok:
                out.append(None)
                continue
            found_check, index = unpack(plain, position * 16)
            out.append(index if tags_ok[position] and found_check == check else None)
            position += 1
        return out

    def decode(self, value: object) -> int | None:
        if not isinstance(value, str) or len(value) != self._length:
            return None
        if not value.startswith(self.prefix):
            return None
        try:
            raw = base64.b64decode(value[len(self.prefix):], altchars=b"-_", validate=True)
        except (ValueError, TypeError):
            return None
        if len(raw) != 18 or raw[:2] != self._tag:
            return None
        with self._lock:
            block = self._dec.update(raw[2:])
        check, index = _PAIR.unpack(block)
        return index if check == self._check else None


def app_prefix(seed: int, namespace: str, n: int) -> str:
    digest = derive(seed, "prefix", namespace)
    return "".join(B64URL[b % 64] for b in digest[:n])
