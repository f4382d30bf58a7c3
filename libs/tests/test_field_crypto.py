import base64

import pytest
from cryptography.fernet import Fernet

from crm_libs.field_crypto import VERSION_2, FieldCipher
from crm_libs.problems import ProblemError

# The development key, and a phone list it sealed before fields were written as v2 (a Fernet
# token, as every file registered until then holds).
DEV_KEY = "ZGV2LW9ubHktZmllbGQta2V5LWNoYW5nZS1tZS0wMDA="
FERNET_TOKEN = (
    "gAAAAABrB2cYzGxC-PeTTsDL_sDuEHtzLBH8lnUn0NCOrRACHwUMipKqN4tXTdcUn51ZyeilzCDEcydgaUa9We2QpSJK"
    "SIpHCg-kbAsKA_8tiD8dIQf_EaL3MPfBJf-Zj4Kn2t205CXL8HeuT_bNAjqT9GQzG3Azeg=="
)
PHONES = '[{"number":"+8613812345678","kind":"mobile","primary":true}]'


def test_fields_are_sealed_with_aes_gcm_and_read_back() -> None:
    cipher = FieldCipher([DEV_KEY])
    token = cipher.encrypt(PHONES)
    assert token.startswith(VERSION_2) and "13812345678" not in token
    # key id (4) + nonce (12) + the text + the 16-byte tag: no padding, no second MAC.
    assert len(base64.urlsafe_b64decode(token[3:])) == 4 + 12 + len(PHONES) + 16
    assert cipher.encrypt(PHONES) != token  # a fresh nonce each time
    assert cipher.decrypt(token) == PHONES


def test_tokens_written_before_still_read() -> None:
    assert FieldCipher([DEV_KEY]).decrypt(FERNET_TOKEN) == PHONES
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    fernet_token = Fernet(old.encode()).encrypt(b"11010519491231002X").decode()
    assert FieldCipher([new, old]).decrypt(fernet_token) == "11010519491231002X"


def test_keys_rotate_the_first_writes_every_one_reads() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_before = FieldCipher([old]).encrypt("secret")
    rotated = FieldCipher([new, old])
    assert rotated.decrypt(sealed_before) == "secret"
    sealed_after = rotated.encrypt("secret")
    assert FieldCipher([new]).decrypt(sealed_after) == "secret"
    with pytest.raises(ProblemError) as missing:
        FieldCipher([old]).decrypt(sealed_after)
    assert missing.value.status == 500
    with pytest.raises(ProblemError):
        FieldCipher([new]).decrypt(sealed_before)


@pytest.mark.parametrize("damage", ["flip", "cut", "garbage"])
def test_a_damaged_token_is_not_read(damage: str) -> None:
    cipher = FieldCipher([DEV_KEY])
    token = cipher.encrypt("secret")
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    if damage == "flip":
        raw[-1] ^= 1
        token = VERSION_2 + base64.urlsafe_b64encode(bytes(raw)).decode()
    elif damage == "cut":
        token = VERSION_2 + base64.urlsafe_b64encode(bytes(raw[:10])).decode()
    else:
        token = VERSION_2 + "not base64 at all!"
    with pytest.raises(ProblemError) as refused:
        cipher.decrypt(token)
    assert refused.value.status == 500


def test_a_batch_s_nonces_are_read_together_and_never_repeat() -> None:
    """A batch of encryptions takes its nonces from one read of the kernel's randomness (more
    when it asks for more than it said): each token under its own, each read back."""
    from crm_libs.field_crypto import Nonces

    cipher = FieldCipher([DEV_KEY])
    nonces = Nonces(10)
    tokens = [cipher.encrypt(f"{PHONES}{i}", nonces=nonces) for i in range(35)]
    used = [base64.urlsafe_b64decode(t[3:])[4:16] for t in tokens]
    assert len(set(used)) == 35 and all(len(n) == 12 for n in used)
    assert [cipher.decrypt(t) for t in tokens] == [f"{PHONES}{i}" for i in range(35)]
