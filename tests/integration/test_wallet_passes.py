"""Wallet passes as the phones will check them: the .pkpass manifest's digests match its
files, its detached PKCS#7 signature verifies (OpenSSL, against the test WWDR stand-in) and
fails once anything is changed, pass.json holds the fields Apple documents for a store
card; the Google JWT verifies with the service account's public key and carries the loyalty
object; each pass's barcode, rendered and read back, is the member's number; a pass link is
good for its member until it expires, and a changed one for nobody."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import zxingcpp

from loyalty_server.passes import (
    AppleSigner,
    GoogleSigner,
    PassesUnavailable,
    PassHolder,
    PassLinks,
    apple_pass,
    google_save_link,
)
from tests.pass_keys import PassKeys, apple_env, make_pass_keys, started_pass_server

HOLDER = PassHolder(
    "0193c5a2-7f00-7abc-8def-0123456789ab", "Anna K.", "2900000000018", 1240, "Gold"
)
# What Apple's reference requires of every pass, and the barcode formats it knows.
REQUIRED = {
    "description",
    "formatVersion",
    "organizationName",
    "passTypeIdentifier",
    "serialNumber",
    "teamIdentifier",
}
BARCODE_FORMATS = {
    "PKBarcodeFormatQR",
    "PKBarcodeFormatPDF417",
    "PKBarcodeFormatAztec",
    "PKBarcodeFormatCode128",
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> PassKeys:
    return make_pass_keys(tmp_path_factory.mktemp("pass-keys"))


def apple(keys: PassKeys) -> AppleSigner:
    return AppleSigner.from_files(
        "pass.test.loyalty", "TEAM123456", "Corner Shop", keys.apple_cert, keys.apple_key, keys.wwdr
    )


def opened(pkpass: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(pkpass)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def openssl_verifies(files: dict[str, bytes], keys: PassKeys, tmp_path: Path) -> bool:
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"])
    (tmp_path / "signature").write_bytes(files["signature"])
    result = subprocess.run(
        [
            "openssl", "cms", "-verify", "-binary", "-inform", "DER",
            "-in", str(tmp_path / "signature"), "-content", str(tmp_path / "manifest.json"),
            "-CAfile", str(keys.wwdr), "-purpose", "any", "-out", "/dev/null",
        ],
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return result.returncode == 0


def read_back(text: str, kind: str) -> list[str]:
    """The code drawn as a phone shows it, then read like a scanner would."""
    image = zxingcpp.create_barcode(text, getattr(zxingcpp.BarcodeFormat, kind)).to_image(scale=4)
    return [code.text for code in zxingcpp.read_barcodes(image)]


def test_a_pkpass_has_matching_digests_a_signature_that_verifies_and_apples_fields(
    keys: PassKeys, tmp_path: Path
) -> None:
    import hashlib

    files = opened(apple_pass(apple(keys), HOLDER, "Corner Shop Rewards"))
    assert {"pass.json", "manifest.json", "signature", "icon.png", "logo.png"} <= set(files)
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name]).hexdigest() == digest
    assert openssl_verifies(files, keys, tmp_path)

    card = json.loads(files["pass.json"])
    assert set(card) >= REQUIRED and card["formatVersion"] == 1
    assert (
        card["passTypeIdentifier"] == "pass.test.loyalty" and card["teamIdentifier"] == "TEAM123456"
    )
    assert card["serialNumber"] == HOLDER.member_id
    assert card["storeCard"]["primaryFields"][0]["value"] == 1240
    (barcode,) = card["barcodes"]
    assert barcode["format"] in BARCODE_FORMATS and barcode["messageEncoding"] == "iso-8859-1"
    assert read_back(barcode["message"], "QRCode") == [HOLDER.card_number]
    assert "phone" not in files["pass.json"].decode().lower()


def test_a_changed_manifest_no_longer_verifies(keys: PassKeys, tmp_path: Path) -> None:
    files = opened(apple_pass(apple(keys), HOLDER, "Corner Shop Rewards"))
    manifest = json.loads(files["manifest.json"])
    manifest["pass.json"] = "0" * 40  # a pass.json swapped for another
    files["manifest.json"] = json.dumps(manifest, indent=1).encode()
    assert not openssl_verifies(files, keys, tmp_path)


def test_a_google_save_link_is_a_jwt_the_service_accounts_key_verifies(keys: PassKeys) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    signer = GoogleSigner.from_key_file(keys.google_key_file, "3388000000012345", "rewards", "CS")
    link = google_save_link(signer, HOLDER)
    assert link.startswith("https://pay.google.com/gp/v/save/")
    token = link.rsplit("/", 1)[1]
    head, body, signature = token.split(".")

    def decoded(part: str) -> Any:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    public = serialization.load_pem_public_key(keys.google_public_pem.read_bytes())
    public.verify(  # type: ignore[union-attr, call-arg]
        decoded(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert json.loads(decoded(head)) == {"alg": "RS256", "typ": "JWT"}
    claims = json.loads(decoded(body))
    assert (claims["aud"], claims["typ"]) == ("google", "savetowallet")
    assert claims["iss"] == "wallet@test-project.iam.gserviceaccount.com"
    (loyalty,) = claims["payload"]["loyaltyObjects"]
    assert loyalty["classId"] == "3388000000012345.rewards"
    assert loyalty["id"].startswith("3388000000012345.")
    assert loyalty["accountId"] == HOLDER.card_number
    assert loyalty["loyaltyPoints"]["balance"] == {"int": 1240}
    assert read_back(loyalty["barcode"]["value"], "QRCode") == [HOLDER.card_number]
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):  # one byte changed: the signature fails
        public.verify(  # type: ignore[union-attr, call-arg]
            decoded(signature), f"{head}.{body}x".encode(), padding.PKCS1v15(), hashes.SHA256()
        )


def test_a_pass_link_is_good_for_its_member_until_it_expires() -> None:
    links = PassLinks(b"k" * 32, ttl_s=600)
    token, expires = links.issue(HOLDER.member_id, now=1_000_000)
    assert expires == 1_000_600
    assert links.member_of(token, now=1_000_599) == HOLDER.member_id
    assert links.member_of(token, now=1_000_601) is None  # expired
    body, stamp, mac = token.split(".")
    later = f"{body}.{int(stamp) + 86_400}.{mac}"  # its expiry pushed a day on
    assert links.member_of(later, now=1_000_000) is None
    other = PassLinks(b"o" * 32).issue("someone-else", now=1_000_000)[0]
    assert links.member_of(other, now=1_000_000) is None  # another server's key
    for junk in ("", "a.b", "a.b.c.d", "x" * 500, "..", "é.1.2"):
        assert links.member_of(junk, now=1_000_000) is None


def test_missing_or_broken_keys_say_what_is_wrong(keys: PassKeys, tmp_path: Path) -> None:
    with pytest.raises(
        PassesUnavailable, match=r"pass certificate .*none\.pem: not a regular file"
    ):
        AppleSigner.from_files("p", "t", "o", tmp_path / "none.pem", keys.apple_key, keys.wwdr)
    other = make_pass_keys(tmp_path / "other")  # a key of another certificate
    with pytest.raises(PassesUnavailable, match="not the pass certificate's key"):
        AppleSigner.from_files("p", "t", "o", keys.apple_cert, other.apple_key, keys.wwdr)
    with pytest.raises(PassesUnavailable, match="a pass type id and a team id"):
        AppleSigner.from_files("p", " ", "o", keys.apple_cert, keys.apple_key, keys.wwdr)
    broken = tmp_path / "broken.json"
    for text in ('{"client_email": "x"}', "[]", "not json", '{"private_key": 5}'):
        broken.write_text(text)
        with pytest.raises(PassesUnavailable, match="Google service-account key file"):
            GoogleSigner.from_key_file(broken, "1", "c", "P")


def test_a_server_with_bad_pass_settings_refuses_to_start_in_one_line(
    keys: PassKeys, tmp_path: Path
) -> None:
    import os
    import sys

    from tests.conftest import REPO

    other = make_pass_keys(tmp_path / "other")
    url = f"sqlite+pysqlite:///{tmp_path / 'store.sqlite'}"
    fifo = tmp_path / "key-fifo"
    os.mkfifo(fifo)  # a key "file" that would block whoever opens it
    cases = [
        ({"LOYALTY_SERVER_APPLE_PASS_KEY": str(other.apple_key)}, "not the pass certificate's"),
        ({"LOYALTY_SERVER_APPLE_PASS_CERT": str(tmp_path)}, "not a regular file"),
        ({"LOYALTY_SERVER_PASS_LINK_KEY_FILE": str(tmp_path)}, "pass link key file"),
        ({"LOYALTY_SERVER_APPLE_WWDR_CERT": str(other.wwdr)}, "did not issue"),
        ({"LOYALTY_SERVER_APPLE_PASS_CERT": ""}, "_APPLE_PASS_CERT both"),
        ({"LOYALTY_SERVER_GOOGLE_WALLET_KEY_FILE": str(keys.google_key_file)}, "ISSUER_ID"),
        (
            {
                "LOYALTY_SERVER_GOOGLE_WALLET_KEY_FILE": str(keys.google_key_file),
                "LOYALTY_SERVER_GOOGLE_WALLET_ISSUER_ID": "3388²",  # not an ASCII digit
            },
            "expected digits",
        ),
        ({"LOYALTY_SERVER_GOOGLE_WALLET_ISSUER_ID": "3388000000012345"}, "_KEY_FILE and"),
        ({"LOYALTY_SERVER_PASS_LINK_KEY_FILE": str(fifo)}, "not a regular file"),
        ({"LOYALTY_SERVER_PHONE_KEY_FILE": str(fifo)}, "phone key file"),
    ]
    half = {"LOYALTY_SERVER_APPLE_TEAM_ID": "TEAM123456"}  # one Apple setting alone
    result = subprocess.run(
        [sys.executable, "-m", "loyalty_server.cli", "serve", "--port", "1",
         "--database-url", url],
        cwd=REPO, env={**os.environ, **half}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "_APPLE_PASS_CERT both" in result.stderr
    for change, said in cases:
        env = {**os.environ, **apple_env(keys, tmp_path), **change}
        result = subprocess.run(
            [sys.executable, "-m", "loyalty_server.cli", "serve", "--port", "1",
             "--database-url", url],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert said in result.stderr


# ------------------------------------------------------------------ the server's endpoints


@pytest.fixture
def pass_server(keys: PassKeys, tmp_path: Path) -> Any:
    env = {
        **apple_env(keys, tmp_path),
        "LOYALTY_SERVER_PUBLIC_URL": "https://loyalty.example.test",
        "LOYALTY_SERVER_GOOGLE_WALLET_KEY_FILE": str(keys.google_key_file),
        "LOYALTY_SERVER_GOOGLE_WALLET_ISSUER_ID": "3388000000012345",
    }
    server = started_pass_server(tmp_path / "server", env)
    try:
        yield server
    finally:
        server.stop()


def test_a_kiosk_link_gives_the_phone_both_passes_for_that_member_only(
    pass_server: Any, keys: PassKeys, tmp_path: Path
) -> None:
    import requests

    from pos_client.demo import DEMO_MEMBERS

    server = pass_server
    anna = DEMO_MEMBERS[0]
    headers = {"Authorization": f"Bearer {server.pair('kiosk')['token']}"}
    found = requests.post(
        server.url + "/v1/members/lookup",
        json={"kind": "card_number", "value": anna.card_number},
        headers=headers,
        timeout=10,
    )
    member_id = found.json()["member_id"]
    made = requests.post(
        server.url + "/v1/passes", json={"member_id": member_id}, headers=headers, timeout=10
    )
    assert made.status_code == 200, made.text
    link = made.json()
    assert link["apple"] and link["google"]
    assert link["url"].startswith("https://loyalty.example.test/v1/passes/")
    path = link["url"].removeprefix("https://loyalty.example.test")
    page = requests.get(server.url + path, timeout=10)  # the phone: no terminal token
    assert page.status_code == 200 and "Add to Apple Wallet" in page.text
    assert anna.card_number not in page.text
    pkpass = requests.get(server.url + path + "/apple.pkpass", timeout=10)
    assert pkpass.headers["Content-Type"] == "application/vnd.apple.pkpass"
    files = opened(pkpass.content)
    assert openssl_verifies(files, keys, tmp_path)
    card = json.loads(files["pass.json"])
    assert card["serialNumber"] == member_id
    assert read_back(card["barcodes"][0]["message"], "QRCode") == [anna.card_number]
    # The member's number read back from the pass identifies the member.
    again = requests.post(
        server.url + "/v1/members/lookup",
        json={"kind": "card_number", "value": card["barcodes"][0]["message"]},
        headers=headers,
        timeout=10,
    )
    assert again.json()["member_id"] == member_id
    google = requests.get(server.url + path + "/google", timeout=10, allow_redirects=False)
    assert google.status_code == 303
    assert google.headers["Location"].startswith("https://pay.google.com/gp/v/save/")
    body, stamp, mac = path.rsplit("/", 1)[1].split(".")
    other = "B" if mac.endswith("A") else "A"  # a MAC ending in A stayed itself (CI, once)
    for bad in (f"{body}.{int(stamp) + 3600}.{mac}", f"{body}.{stamp}.{mac[:-1]}{other}", "x"):
        refused = requests.get(server.url + f"/v1/passes/{bad}/apple.pkpass", timeout=10)
        assert refused.status_code == 404
    nobody = requests.post(
        server.url + "/v1/passes", json={"member_id": "nobody"}, headers=headers, timeout=10
    )
    assert nobody.status_code == 404
    assert (
        requests.post(
            server.url + "/v1/passes", json={"member_id": member_id}, timeout=10
        ).status_code
        == 401
    )


def test_without_keys_passes_are_off_and_say_so(tmp_path: Path) -> None:
    import requests

    from loyalty_server.cli import migrate
    from pos_client.ledger import sqlite_url
    from tests.integration.server_helpers import ServerProcess

    server = ServerProcess(sqlite_url(tmp_path / "store.sqlite"), tmp_path)
    migrate(server.database_url)
    server.start()
    try:
        headers = {"Authorization": f"Bearer {server.pair('kiosk')['token']}"}
        off = requests.post(
            server.url + "/v1/passes", json={"member_id": "m-1"}, headers=headers, timeout=10
        )
    finally:
        server.stop()
    assert off.status_code == 404 and "passes_off" in off.text


def test_the_phones_page_is_locked_down_and_a_dead_link_is_a_page_not_json(
    pass_server: Any,
) -> None:
    import requests

    from pos_client.demo import DEMO_MEMBERS

    server = pass_server
    headers = {"Authorization": f"Bearer {server.pair('kiosk')['token']}"}
    member_id = requests.post(
        server.url + "/v1/members/lookup",
        json={"kind": "card_number", "value": DEMO_MEMBERS[1].card_number},
        headers=headers,
        timeout=10,
    ).json()["member_id"]
    link = requests.post(
        server.url + "/v1/passes", json={"member_id": member_id}, headers=headers, timeout=10
    ).json()["url"]
    path = link.removeprefix("https://loyalty.example.test")
    page = requests.get(server.url + path, timeout=10)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    google = requests.get(server.url + path + "/google", timeout=10, allow_redirects=False)
    assert google.headers["Referrer-Policy"] == "no-referrer"  # the token stays here
    for suffix in ("/apple.pkpass", "/google"):  # a tap after the ten minutes: a page
        late = requests.get(server.url + "/v1/passes/a.1.b" + suffix, timeout=10)
        assert late.status_code == 404 and late.headers["Content-Type"].startswith("text/html")
        assert late.headers["Referrer-Policy"] == "no-referrer"
    traversal = requests.get(server.url + "/v1/passes/..%2F..%2Fv1%2Fhealth", timeout=10)
    assert traversal.status_code == 404  # no route: FastAPI's own not found
    for dead in ("x" * 500, "a.b.c", path.rsplit("/", 1)[1] + "0"):
        answer = requests.get(server.url + "/v1/passes/" + dead, timeout=10)
        assert answer.status_code == 404, dead
        assert answer.headers["Content-Type"].startswith("text/html"), dead
        assert "expired" in answer.text and '"detail"' not in answer.text
