"""NTAG 424 DNA issuing commands (issue 12) pinned by NXP AN12196's worked examples:
AuthenticateEV2First with key 0x03 (section 6.10 / rev. 2.0 Table 19) and the MAC of a
command in CommMode.MAC (section 5.3)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pos_client.ntag424 import (
    Ev2Session,
    Ntag424Error,
    UrlTemplate,
    authenticate_finish,
    authenticate_first_command,
    authenticate_second_command,
    change_file_settings_command,
    change_key_command,
    check_answer,
    command_mac,
    full_command,
    sdm_file_settings,
    session_vectors,
    url_template,
)

h = bytes.fromhex
KEY = bytes(16)
RND_A = h("B98F4C50CF1C2E084FD150E33992B048")
FIRST_ANSWER = h("B875CEB0E66A6C5CD00898DC371F92D191AF")
SECOND_ANSWER = h("0CC9A8094A8EEA683ECAAC5C7BF20584206D0608D477110FC6B3D5D3F65C3A6A9100")


def test_an12196_authenticate_ev2_first_with_key_3() -> None:
    assert authenticate_first_command(3) == h("9071000002030000")
    apdu, rnd_b = authenticate_second_command(KEY, FIRST_ANSWER, RND_A)
    assert rnd_b == h("91517975190DCEA6104948EFA3085C1B")
    assert apdu == h("90AF000020FF0306E47DFBC50087C4D8A78E88E62DE1E8BE457AA477C707E2F0874916A8B100")
    sv1, _sv2 = session_vectors(RND_A, rnd_b)
    assert sv1 == h("A55A00010080B98FDD01B6693705CEA6104948EFA3085C1B4FD150E33992B048")
    session = authenticate_finish(KEY, SECOND_ANSWER, RND_A, rnd_b)
    assert session.transaction_id == h("7614281A")
    assert session.enc_key == h("7A93D6571E4B180FCA6AC90C9A7488D4")
    assert session.mac_key == h("FC4AF159B62E549B5812394CAB1918CC")
    assert session.pd_cap2 == bytes(6) and session.pcd_cap2 == bytes(6)
    assert "7A93" not in repr(session)  # keys stay out of reprs


def test_an12196_command_mac() -> None:
    assert command_mac(h("8248134A386E86EB7FAF54A52E536CB6"), h("F500007A21085E02")) == h(
        "6597A457C8CD442C"
    )


def test_a_card_without_the_key_is_found_out() -> None:
    _apdu, rnd_b = authenticate_second_command(KEY, FIRST_ANSWER, RND_A)
    # The same answer checked with another key, or with another RndA: no proof of the key.
    with pytest.raises(Ntag424Error, match="did not prove"):
        authenticate_finish(h("00112233445566778899AABBCCDDEEFF"), SECOND_ANSWER, RND_A, rnd_b)
    with pytest.raises(Ntag424Error, match="did not prove"):
        authenticate_finish(KEY, SECOND_ANSWER, bytes(16), rnd_b)


@pytest.mark.parametrize(
    "answer", [h("91AE"), FIRST_ANSWER[:-2] + h("91AE"), FIRST_ANSWER[:10] + h("91AF")]
)
def test_a_refused_or_short_first_answer_is_a_clear_error(answer: bytes) -> None:
    with pytest.raises(Ntag424Error, match="refused authentication"):
        authenticate_second_command(KEY, answer, RND_A)


def test_only_keys_0_to_4_exist() -> None:
    with pytest.raises(ValueError, match="keys 0 to 4"):
        authenticate_first_command(5)


def test_an12196_write_data_in_full_mode_after_key_3() -> None:
    # WriteData (8D) to file 3, offset 0, 10 bytes, in the session authenticated above.
    _apdu, rnd_b = authenticate_second_command(KEY, FIRST_ANSWER, RND_A)
    session = authenticate_finish(KEY, SECOND_ANSWER, RND_A, rnd_b)
    apdu = full_command(session, 0x8D, h("030000000A0000"), h("0102030405060708090A"))
    assert apdu == h("908D00001F030000000A00006B5E6804909962FC4E3FF5522CF0F8436C0C53315B9C73AA00")
    data, after = check_answer(session, h("C26D236E4A7C046D9100"))
    assert data == b"" and after.command_counter == 1
    with pytest.raises(Ntag424Error, match="does not verify"):
        check_answer(session, h("C26D236E4A7C046E9100"))
    with pytest.raises(Ntag424Error, match="refused the command"):
        check_answer(session, h("C26D236E4A7C046D919E"))


# AN12196's ChangeKey examples run in one session (TI 7614281A, its session keys as given).
CHANGE_SESSION = Ev2Session(
    h("7614281A"), h("4CF3CB41A22583A61E89B158D252FC53"), h("5529860B2FC5FB6154B7F28361D30BF9")
)


def test_an12196_change_key_2_with_its_old_value_and_crc() -> None:
    session = replace(CHANGE_SESSION, command_counter=2)
    apdu = change_key_command(
        session, 2, h("F3847D627727ED3BC9C4CC050489B966"), 1, old_key=bytes(16)
    )
    assert apdu == h(
        "90C4000029022CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC7"
        "5D0CE20BCD1D06E600"
    )
    _data, after = check_answer(session, h("203BB55D1089D5879100"))
    assert after.command_counter == 3


def test_an12196_change_the_authenticated_key_0() -> None:
    session = replace(CHANGE_SESSION, command_counter=3)
    apdu = change_key_command(session, 0, h("5004BF991F408672B1EF00F08F9E8647"), 1)
    assert apdu == h(
        "90C400002900C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF75668A01D6FD"
        "A6610234BDED643200"
    )


def test_changing_another_key_without_its_old_value_is_refused() -> None:
    with pytest.raises(ValueError, match="old value"):
        change_key_command(CHANGE_SESSION, 2, bytes(16), 1)


def test_an12196_change_file_settings_enabling_sdm() -> None:
    # Section 6.9: SDM on file 2, PICC data at 0x20, the MAC (over no input) at 0x43.
    template = UrlTemplate(b"", 0x20, 0x43, 0x43)
    settings = sdm_file_settings(template)
    assert settings == h("4000E0C1F121200000430000430000")
    session = Ev2Session(
        h("9D00C4DF"),
        h("1309C877509E5A215007FF0ED19CA564"),
        h("4C6626F5E72EA694202139295C7A7FC7"),
        command_counter=1,
    )
    apdu = change_file_settings_command(session, 2, settings)
    assert apdu == h("905F0000190261B6D97903566E84C3AE5274467E89EAD799B7C1A0EF7A0400")
    _data, after = check_answer(session, h("57BFF87B1241E93D9100"))
    assert after.command_counter == 2


def test_what_a_card_mirrors_into_its_template_is_a_url_that_verifies() -> None:
    """The offsets are checked by doing what the card does: its PICC data and MAC written
    into the template file at them give a URL that parses and verifies."""
    import ndef

    from pos_client.sun import SunKeys, card_url

    template = url_template("https://loyalty.example/c")
    uid, meta, file_key = h("04958CAA5C5E80"), h("0F" * 16), h("A1" * 16)
    genuine = card_url("https://loyalty.example/c", meta, file_key, uid, 5)
    picc = genuine.split("picc_data=")[1][:32].encode()
    mac = genuine.split("cmac=")[1][:16].encode()
    written = bytearray(template.file)
    written[template.picc_offset : template.picc_offset + 32] = picc
    written[template.mac_offset : template.mac_offset + 16] = mac
    length = int.from_bytes(written[:2], "big")
    (record,) = ndef.message_decoder(bytes(written[2 : 2 + length]))
    assert record.iri == genuine
    tap = SunKeys(meta, file_key, diversify=False).verify_url(record.iri)
    assert (tap.uid, tap.counter) == (uid, 5)


@pytest.mark.parametrize(
    "base", ["ftp://x.example/c", "https://", "https://x.example/c?m=1", "https://é.example"]
)
def test_a_base_url_a_card_cannot_carry_is_refused(base: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        url_template(base)
