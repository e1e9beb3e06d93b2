"""Golden vectors of WECHAT.md §4.13 (1), from wechatpy's own crypto tests, checked against
the sandbox's independent implementation."""

import pytest

from integrations.sandbox.crypto import (
    CryptoError,
    MessageCrypto,
    aes_key,
    decrypt,
    encrypt,
    pkcs7_pad,
    sha1_signature,
)

TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "wx49f0ab532d5d035a"
ENCRYPTED = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHC"
    "rsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpX"
    "aG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQi"
    "MS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQi"
    "pvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
ENVELOPE = (
    f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>\n<Encrypt><![CDATA[{ENCRYPTED}]]>"
    "</Encrypt>\n<AgentID><![CDATA[1]]></AgentID>\n</xml>"
)
REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
REPLY_ENCRYPTED = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNc"
    "BqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY"
    "0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsV"
    "bwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAG"
    "VRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
ECHO = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="


@pytest.fixture
def crypto():
    return MessageCrypto(TOKEN, AES_KEY, CORP_ID)


def test_golden_message_decrypts_after_its_signature_verifies(crypto):
    plain = crypto.decrypt_envelope(ENVELOPE, "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
                                    "1411525903", "461056294")

    assert "<Content><![CDATA[test]]></Content>" in plain
    assert "<FromUserName><![CDATA[messense]]></FromUserName>" in plain
    assert plain.startswith(f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>")


def test_golden_reply_encrypts_to_the_reference_ciphertext_and_signature(crypto):
    reply = crypto.encrypt_reply(REPLY, "461056294", "1411525903", b"1234567890123456")

    assert reply == (
        f"<xml>\n<Encrypt><![CDATA[{REPLY_ENCRYPTED}]]></Encrypt>\n"
        "<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>\n"
        "<TimeStamp>1411525903</TimeStamp>\n<Nonce><![CDATA[461056294]]></Nonce>\n</xml>"
    )
    assert REPLY_ENCRYPTED.startswith("9s4gMv99m88kKTh/")


def test_golden_echostr_signature_and_plaintext(crypto):
    assert crypto.signature("1411443780", "437374425", ECHO) == (
        "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96")
    assert crypto.decrypt(ECHO) == b"5927782489442352469"


def test_wrong_signature_is_refused(crypto):
    with pytest.raises(CryptoError, match="msg_signature"):
        crypto.decrypt_envelope(ENVELOPE, "0" * 40, "1411525903", "461056294")


def test_wrong_receive_id_is_refused():
    with pytest.raises(CryptoError, match="receive id"):
        decrypt(aes_key(AES_KEY), ENCRYPTED, "wx0000000000000000")


def test_padding_is_to_32_byte_blocks():
    assert len(pkcs7_pad(b"")) == 32
    assert pkcs7_pad(b"x" * 31)[-1] == 1
    assert pkcs7_pad(b"x" * 32)[-32:] == bytes([32]) * 32


def test_round_trip_keeps_unicode_and_receive_id():
    key = aes_key(AES_KEY)
    encrypted = encrypt(key, "关注 subscribe".encode(), "wxappid", b"r" * 16)

    assert decrypt(key, encrypted) == ("关注 subscribe".encode(), "wxappid")


def test_plain_signature_sorts_its_parts():
    assert sha1_signature("b", "a", "c") == sha1_signature("c", "b", "a")


def test_encoding_aes_key_must_be_43_characters():
    with pytest.raises(CryptoError):
        aes_key(AES_KEY + "=")
