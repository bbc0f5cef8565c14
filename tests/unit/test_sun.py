"""SUN message verification (issue 12) pinned by published vectors: NXP AN12196 (SUN
decryption and MAC, session keys), NXP AN10922 (key diversification), and the SDM backend
examples built on them. Every refusal is checked to name no key and no UID."""

from __future__ import annotations

from pathlib import Path

import pytest

from pos_client.sun import (
    SunMessage,
    SunRefused,
    UrlLayout,
    card_url,
    decrypt_picc_data,
    diversify_key,
    load_sun_keys,
    parse_url,
    sdm_mac,
    session_enc_key,
    session_mac_key,
    session_vector,
    verify,
)

ZERO = bytes(16)
h = bytes.fromhex

# AN12196 section 3.4.4.2.1 (Table 4): encrypted PICC data, MAC over no input.
SUN1 = {"picc": "EF963FF7828658A599F3041510671E88", "mac": "94EED9EE65337086"}
SUN1_UID, SUN1_COUNTER = "04DE5F1EACC040", 61
# AN12196 section 3.4.4.2.2 (Table 5): with encrypted file data, MAC over "<enc>&cmac=".
SUN2_URL = (
    "https://sdm.nfcdeveloper.com/tag?picc_data=FD91EC264309878BE6345CBE53BADF40"
    "&enc=CEE9A53E3E463EF1F459635736738962&cmac=ECC1E7F6C6C73BF6"
)
SUN2_UID, SUN2_COUNTER = "04958CAA5C5E80", 8


def zero_file_key(_uid: bytes) -> bytes:
    return ZERO


def test_an12196_picc_data_decrypts_to_the_uid_and_counter() -> None:
    picc = decrypt_picc_data(ZERO, h(SUN1["picc"]))
    assert (picc.uid, picc.counter) == (h(SUN1_UID), SUN1_COUNTER)


def test_an12196_message_with_no_mac_input_verifies() -> None:
    tap = verify(SunMessage(h(SUN1["picc"]), h(SUN1["mac"])), ZERO, zero_file_key)
    assert (tap.uid, tap.counter, tap.file_data) == (h(SUN1_UID), SUN1_COUNTER, None)


def test_an12196_session_mac_key_from_a_non_zero_file_key() -> None:
    # Table 1: SV2 = 3CC30001 0080 || UID || counter 1, CMAC under the file-read key.
    uid = h("04C767F2066180")
    assert session_vector(h("3CC300010080"), uid, 1) == h("3CC30001008004C767F2066180010000")
    key = session_mac_key(h("5ACE7E50AB65D5D51FD5BF5A16B8205B"), uid, 1)
    assert key == h("3A3E8110E05311F7A3FCF0D969BF2B48")


def test_an12196_mac_over_the_file_data_and_the_next_parameter_name() -> None:
    key = session_mac_key(ZERO, h(SUN2_UID), SUN2_COUNTER)
    assert key == h("3ED0920E5E6A0320D823D5987FEAFBB1")
    assert sdm_mac(key, b"CEE9A53E3E463EF1F459635736738962&cmac=") == h("ECC1E7F6C6C73BF6")


def test_a_whole_url_with_file_data_verifies_and_decrypts_it() -> None:
    message = parse_url(SUN2_URL)
    assert message.mac_input == b"CEE9A53E3E463EF1F459635736738962&cmac="
    tap = verify(message, ZERO, zero_file_key)
    assert (tap.uid, tap.counter) == (h(SUN2_UID), SUN2_COUNTER)
    assert tap.file_data == b"xxxxxxxxxxxxxxxx"


def test_non_zero_keys_and_a_mac_over_the_file_data_alone() -> None:
    # An SDM backend's own vector: the MAC input is the file data's hex alone (the MAC's
    # parameter right after it, unnamed).
    message = SunMessage(
        h("8ACADDEF0A9B62CDAE39A16B83FC14DE"),
        h("238B2543A8DEBAD8"),
        h("B8436E11F627BB7F543FCC0C1E0D1A89"),
        b"B8436E11F627BB7F543FCC0C1E0D1A89",
    )
    tap = verify(
        message,
        h("42aff114f2cb3b6141be6dc95dfc5416"),
        lambda _: h("b62a9baf092439bd43c62aee96b970c5"),
    )
    assert (tap.uid, tap.counter) == (h("041d3c8a2d6b80"), 291)
    assert tap.file_data == h("4e545858716e6f5f6f42467077792d56")


def test_an10922_aes128_key_diversification() -> None:
    key = diversify_key(
        h("00112233445566778899AABBCCDDEEFF"),
        h("04782E21801D80"),
        system_identifier=h("4E585020416275"),  # "NXP Abu"
        aid=h("3042F5"),
    )
    assert key == h("A8DD63A3B89D54B37CA802473FDA9175")


def test_the_file_read_key_is_asked_for_the_cards_own_uid() -> None:
    asked: list[bytes] = []

    def file_key(uid: bytes) -> bytes:
        asked.append(uid)
        return ZERO

    verify(parse_url(SUN2_URL), ZERO, file_key)
    assert asked == [h(SUN2_UID)]


def flip(hex_text: str, at: int = 0) -> str:
    value = bytearray(h(hex_text))
    value[at] ^= 0x01
    return value.hex().upper()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # The MAC altered: a forged or edited message.
        (SUN2_URL.replace("ECC1E7F6C6C73BF6", flip("ECC1E7F6C6C73BF6", 7)), "forged"),
        # The file data altered: the MAC covers it.
        (SUN2_URL.replace("CEE9A53E", flip("CEE9A53E")), "forged"),
        # Another card's PICC data under this MAC: a spliced message.
        (SUN2_URL.replace("FD91EC264309878BE6345CBE53BADF40", SUN1["picc"]), "forged"),
        # PICC data that is not a card's (one bit flipped: another plaintext).
        (SUN2_URL.replace("FD91EC26", flip("FD91EC26")), "unreadable"),
        ("https://x.example/tag?picc_data=FD91&cmac=ECC1E7F6C6C73BF6", "malformed"),
        ("https://x.example/tag?picc_data=" + "G" * 32 + "&cmac=ECC1E7F6C6C73BF6", "malformed"),
        ("https://x.example/tag?picc_data=" + "0 " * 16 + "&cmac=ECC1E7F6C6C73BF6", "malformed"),
        ("https://x.example/tag?cmac=ECC1E7F6C6C73BF6", "malformed"),
        ("https://x.example/tag?picc_data=" + "0" * 32, "malformed"),
        ("https://x.example/tag", "malformed"),
        (SUN2_URL + "&cmac=ECC1E7F6C6C73BF6", "malformed"),  # a parameter twice
        (SUN2_URL.replace("&enc=CEE9A53E3E463EF1F459635736738962", "&enc=CEE9"), "malformed"),
        (SUN2_URL + "&x=" + "A" * 600, "malformed"),  # longer than any card's URL
        ("https://x.example/tag?picc_data=" + "é" * 32 + "&cmac=ECC1E7F6C6C73BF6", "malformed"),
        (
            "https://x.example/tag?cmac=ECC1E7F6C6C73BF6&picc_data=FD91EC264309878BE6345CBE53BADF40"
            "&enc=CEE9A53E3E463EF1F459635736738962",
            "malformed",  # the file data after the MAC: the MAC cannot cover it
        ),
    ],
)
def test_a_message_that_proves_nothing_is_refused_with_its_reason(url: str, reason: str) -> None:
    with pytest.raises(SunRefused) as refused:
        verify(parse_url(url), ZERO, zero_file_key)
    assert refused.value.reason == reason
    text = str(refused.value)
    assert SUN2_UID.lower() not in text.lower() and "00000000" not in text


def test_a_wrong_meta_read_key_refuses_the_message() -> None:
    with pytest.raises(SunRefused) as refused:
        verify(parse_url(SUN2_URL), h("00112233445566778899AABBCCDDEEFF"), zero_file_key)
    assert refused.value.reason in ("unreadable", "forged")


def test_a_wrong_file_read_key_refuses_the_message() -> None:
    with pytest.raises(SunRefused) as refused:
        verify(parse_url(SUN2_URL), ZERO, lambda _: h("00112233445566778899AABBCCDDEEFF"))
    assert refused.value.reason == "forged"


def test_a_url_with_other_parameter_names_is_read_by_its_layout() -> None:
    url = SUN2_URL.replace("picc_data=", "p=").replace("enc=", "e=").replace("cmac=", "m=")
    message = parse_url(url, UrlLayout(picc_data="p", file_data="e", mac="m"))
    assert message.mac_input == b"CEE9A53E3E463EF1F459635736738962&m="
    # The card MACs its own parameter names: the AN12196 MAC covered "&cmac=".
    with pytest.raises(SunRefused, match="does not verify"):
        verify(message, ZERO, zero_file_key)


def test_session_enc_key_differs_from_the_mac_key() -> None:
    uid = h(SUN2_UID)
    assert session_enc_key(ZERO, uid, 8) != session_mac_key(ZERO, uid, 8)


def test_a_key_of_the_wrong_size_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="16 bytes") as refused:
        verify(parse_url(SUN2_URL), b"secret-key", zero_file_key)
    assert "secret" not in str(refused.value)


def test_a_card_url_made_here_is_the_one_an12196_publishes() -> None:
    # The card's side, inverse of verify: AN12196's message from its own inputs (the PICC
    # data's padding is the card's random; read back from the published message).
    padding = _padding_of(h("FD91EC264309878BE6345CBE53BADF40"))
    url = card_url(
        "https://sdm.nfcdeveloper.com/tag", ZERO, ZERO, h(SUN2_UID), 8, b"x" * 16, padding
    )
    assert url == SUN2_URL


def _padding_of(picc: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(ZERO), modes.CBC(bytes(16))).decryptor()
    return (decryptor.update(picc) + decryptor.finalize())[11:]


def write_keys(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


MASTER = "00112233445566778899AABBCCDDEEFF"
META = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"


def test_cards_with_diversified_keys_verify_and_one_cards_key_opens_no_other(
    tmp_path: Path,
) -> None:
    keys = load_sun_keys(
        write_keys(
            tmp_path,
            f'meta_read_key = "{META}"\nfile_read_key = "{MASTER}"\n'
            'diversify = true\nsystem_identifier = "4E585020416275"\n',
        )
    )
    first, second = h("04782E21801D80"), h("04AABBCCDDEE80")
    url = card_url("https://l.example/c", h(META), keys.file_read_key_for(first), first, 41)
    tap = keys.verify_url(url)
    assert (tap.uid, tap.counter) == (first, 41)
    assert keys.file_read_key_for(first) == h("A8DD63A3B89D54B37CA802473FDA9175")
    # A card made with the master key itself, or with another card's key, is a forgery.
    for wrong_key in (h(MASTER), keys.file_read_key_for(second)):
        forged = card_url("https://l.example/c", h(META), wrong_key, first, 42)
        with pytest.raises(SunRefused) as refused:
            keys.verify_url(forged)
        assert refused.value.reason == "forged"


@pytest.mark.parametrize(
    ("text", "mode", "reason"),
    [
        (f'meta_read_key = "{META}"\nfile_read_key = "{MASTER}"\n', 0o640, "chmod 600"),
        (f'meta_read_key = "{META}"\n', 0o600, "file_read_key must be 32 hex"),
        (f'meta_read_key = "{META[:-1]}g"\nfile_read_key = "{MASTER}"\n', 0o600, "meta_read_key"),
        (f'meta_read_key = "{META}"\nfile_read_key = "{MASTER}"\n', 0o600, "system_identifier"),
        (
            f'meta_read_key = "{META}"\nfile_read_key = "{MASTER}"\nsystem_identifier = "'
            + "AB" * 22
            + '"\n',
            0o600,
            "1 to 21 bytes",
        ),
        (
            f'meta_read_key = "{META}"\nfile_read_key = "{MASTER}"\ndiversify = "yes"\n',
            0o600,
            "true or false",
        ),
        (f'meta_read_key = "{META}"\nfile_read_key = "{MASTER}"\nkey2 = "x"\n', 0o600, "unknown"),
        (
            f'meta_read_key = "{META}"\nfile_read_key = "{MASTER}"\ndiversify = false\n'
            'card_master_key = "00"\n',
            0o600,
            "card_master_key must be 32 hex",
        ),
        ("meta_read_key = [", 0o600, "not a TOML file"),
    ],
)
def test_a_bad_key_file_is_refused_naming_the_field_never_the_key(
    tmp_path: Path, text: str, mode: int, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason) as refused:
        load_sun_keys(write_keys(tmp_path, text, mode))
    assert META not in str(refused.value) and MASTER not in str(refused.value)


def test_a_key_file_that_is_a_link_a_fifo_a_folder_or_huge_is_refused_unread(
    tmp_path: Path,
) -> None:
    import os

    good = write_keys(
        tmp_path, f'meta_read_key = "{META}"\nfile_read_key = "{MASTER}"\ndiversify = false\n'
    )
    link = tmp_path / "link.toml"
    link.symlink_to(good)
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo, 0o600)
    folder = tmp_path / "folder.toml"
    folder.mkdir(mode=0o700)
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * 5000)
    huge.chmod(0o600)
    for path, reason in (
        (link, "symbolic link"),
        (fifo, "not a regular file"),  # and no hang waiting for a writer
        (folder, "not a regular file"),
        (huge, "too large"),
    ):
        with pytest.raises(ValueError, match=reason):
            load_sun_keys(path)
    assert load_sun_keys(good).diversify is False


def test_weak_keys_are_named_never_shown() -> None:
    from pos_client.sun import SunKeys

    zero = SunKeys(bytes(16), bytes(16), diversify=False, card_master_key=h(MASTER))
    said = zero.weaknesses()
    assert len(said) == 4 and all(MASTER.lower() not in s.lower() for s in said)
    assert len(zero.weaknesses(issuing=True)) == 3
    strong = SunKeys(h(META), h(MASTER), True, h("4C4F59414C"))
    assert strong.weaknesses() == []


def test_a_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    import os
    import pwd

    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    path = write_keys(
        tmp_path, f'meta_read_key = "{META}"\nfile_read_key = "{MASTER}"\ndiversify = false\n'
    )
    os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
    with pytest.raises(ValueError, match="owned by another user"):
        load_sun_keys(path)
