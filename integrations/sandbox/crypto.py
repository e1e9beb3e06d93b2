"""WeChat/WeCom message encryption and signatures (WECHAT.md §3.4), written independently of
wechatpy so the tests do not check wechatpy against itself.

AES-256-CBC, key = base64(EncodingAESKey + "="), IV = key[:16], PKCS#7 padded to 32 bytes;
plaintext = random16 || uint32_be(len(msg)) || msg || receive_id.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32


class CryptoError(ValueError):
    pass


def aes_key(encoding_aes_key: str) -> bytes:
    if len(encoding_aes_key) != 43:
        raise CryptoError("EncodingAESKey must be 43 characters")
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise CryptoError("EncodingAESKey does not decode to 32 bytes")
    return key


def new_encoding_aes_key(random_bytes: bytes) -> str:
    """43 characters from 32 random bytes (base64 without the trailing '=')."""
    return base64.b64encode(random_bytes).decode()[:43]


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - the platform's signature scheme is SHA-1


def pkcs7_pad(data: bytes, block: int = BLOCK) -> bytes:
    pad = block - len(data) % block
    return data + bytes([pad]) * pad


def pkcs7_unpad(data: bytes, block: int = BLOCK) -> bytes:
    if not data:
        raise CryptoError("empty plaintext")
    pad = data[-1]
    if pad < 1 or pad > block:
        raise CryptoError("bad padding")
    return data[:-pad]


def encrypt(key: bytes, message: bytes, receive_id: str, random16: bytes) -> str:
    if len(random16) != 16:
        raise CryptoError("random prefix must be 16 bytes")
    plain = random16 + struct.pack(">I", len(message)) + message + receive_id.encode()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    cipher_text = encryptor.update(pkcs7_pad(plain)) + encryptor.finalize()
    return base64.b64encode(cipher_text).decode()


def decrypt(key: bytes, encrypted: str, receive_id: str | None = None) -> tuple[bytes, str]:
    """Return (message, receive_id); raise CryptoError when the id does not match."""
    try:
        cipher_text = base64.b64decode(encrypted)
    except (ValueError, TypeError) as exc:
        raise CryptoError("Encrypt is not base64") from exc
    if not cipher_text or len(cipher_text) % 16:
        raise CryptoError("ciphertext length is not a multiple of 16")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = pkcs7_unpad(decryptor.update(cipher_text) + decryptor.finalize())
    (length,) = struct.unpack(">I", plain[16:20])
    message = plain[20:20 + length]
    found_id = plain[20 + length:].decode(errors="replace")
    if receive_id is not None and found_id != receive_id:
        raise CryptoError(f"receive id {found_id!r} does not match {receive_id!r}")
    return message, found_id


_TAG_RE = r"<{0}>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</{0}>"


def xml_field(xml: str, name: str) -> str | None:
    match = re.search(_TAG_RE.format(name), xml, re.S)
    return match.group(1) if match else None


class MessageCrypto:
    """One callback endpoint's crypto: token + EncodingAESKey + receive id (appid/corpid)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str):
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def encrypt(self, message: str | bytes, random16: bytes) -> str:
        data = message.encode() if isinstance(message, str) else message
        return encrypt(self.key, data, self.receive_id, random16)

    def decrypt(self, encrypted: str) -> bytes:
        return decrypt(self.key, encrypted, self.receive_id)[0]

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return sha1_signature(self.token, timestamp, nonce, encrypted)

    def encrypt_reply(self, message: str, nonce: str, timestamp: str, random16: bytes) -> str:
        """The passive-reply envelope, byte-compatible with wechatpy's encrypt_message."""
        encrypted = self.encrypt(message, random16)
        signature = self.signature(timestamp, nonce, encrypted)
        return (
            f"<xml>\n<Encrypt><![CDATA[{encrypted}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
            f"<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
        )

    def decrypt_envelope(self, xml: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        encrypted = xml_field(xml, "Encrypt")
        if encrypted is None:
            raise CryptoError("no Encrypt element")
        if self.signature(timestamp, nonce, encrypted) != msg_signature:
            raise CryptoError("msg_signature mismatch")
        return self.decrypt(encrypted).decode()

    def decrypt_reply(self, xml: str) -> str:
        """Check and open a passive reply (Encrypt + MsgSignature + TimeStamp + Nonce)."""
        signature = xml_field(xml, "MsgSignature")
        timestamp = xml_field(xml, "TimeStamp")
        nonce = xml_field(xml, "Nonce")
        if not (signature and timestamp and nonce):
            raise CryptoError("reply lacks MsgSignature/TimeStamp/Nonce")
        return self.decrypt_envelope(xml, signature, timestamp, nonce)
