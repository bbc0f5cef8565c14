"""Server settings: command-line options over LOYALTY_SERVER_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from pos_client.ledger.expiry import parse_time_of_day
from pos_client.settings import default_config_dir, known_timezone


@dataclass(frozen=True)
class PassSettings:
    """Wallet passes (loyalty_server.passes): off until the store sets its keys."""

    public_url: str = ""  # how phones reach this server: https://loyalty.example.com
    link_key_file: Path = Path("pass-links.key")  # signs the kiosks' short-lived links
    apple_pass_type_id: str = ""
    apple_team_id: str = ""
    apple_cert: Path | None = None  # the pass type certificate (PEM)
    apple_key: Path | None = None  # its private key (PEM, readable by the server only)
    apple_wwdr: Path | None = None  # Apple's WWDR intermediate certificate (PEM)
    google_key_file: Path | None = None  # the service account's JSON key
    google_issuer_id: str = ""
    google_class: str = "loyalty"

    @property
    def apple(self) -> bool:
        return bool(self.apple_pass_type_id and self.apple_cert)

    @property
    def google(self) -> bool:
        return bool(self.google_issuer_id and self.google_key_file)


PASS_ENV = {  # LOYALTY_SERVER_<name> -> PassSettings field
    "PUBLIC_URL": "public_url",
    "PASS_LINK_KEY_FILE": "link_key_file",
    "APPLE_PASS_TYPE_ID": "apple_pass_type_id",
    "APPLE_TEAM_ID": "apple_team_id",
    "APPLE_PASS_CERT": "apple_cert",
    "APPLE_PASS_KEY": "apple_key",
    "APPLE_WWDR_CERT": "apple_wwdr",
    "GOOGLE_WALLET_KEY_FILE": "google_key_file",
    "GOOGLE_WALLET_ISSUER_ID": "google_issuer_id",
    "GOOGLE_WALLET_CLASS": "google_class",
}


PASS_PATHS = {"link_key_file", "apple_cert", "apple_key", "apple_wwdr", "google_key_file"}


def passes_from(env: dict[str, str] | os._Environ[str]) -> PassSettings:
    values: dict[str, object] = {}
    for name, field_name in PASS_ENV.items():
        raw = env.get(f"LOYALTY_SERVER_{name}", "").strip()
        if raw:
            values[field_name] = Path(raw) if field_name in PASS_PATHS else raw
    settings = PassSettings(**values)  # type: ignore[arg-type]
    url = settings.public_url
    if url and not url.startswith(("https://", "http://")):
        raise ValueError(f"LOYALTY_SERVER_PUBLIC_URL: expected http(s)://..., got {url!r}")
    if settings.apple and not (settings.apple_key and settings.apple_wwdr):
        raise ValueError(
            "Apple passes need LOYALTY_SERVER_APPLE_PASS_KEY and LOYALTY_SERVER_APPLE_WWDR_CERT"
        )
    return settings


@dataclass(frozen=True)
class ServerSettings:
    database_url: str = "sqlite+pysqlite:///loyalty-server.sqlite"
    program: str = "category_tiers"
    config_dir: Path = Path()
    phone_key_file: Path = Path("store-phone.key")
    phone_lookups_per_minute: int = 30
    flag_earnings_per_day: int = 20
    key_retention_days: int = 90
    pairing_code_ttl_s: int = 600
    max_batch: int = 500
    # Batches applied at once per server process (below its pool of 15 connections).
    batches_at_once: int = 8
    # Abuse limits, enforced for every operation kind (see pos_client.ledger.Limits).
    max_sale_amount: int = 100_000  # whole currency units
    max_lines_per_sale: int = 500
    # One sale of max_sale_amount at the best preset rate (wellness_blocks: 10 points per
    # unit) earns 1,000,000 points: one operation may, and a member may earn two such sales'
    # worth a day. A store with smaller tickets lowers all three together.
    max_points_per_operation: int = 1_000_000
    max_points_per_member_per_day: int = 2_000_000
    operations_per_terminal_per_minute: int = 3_000
    max_body_bytes: int = 2 * 1024 * 1024  # pairing 1 KiB, partner transfers 4 KiB
    # Time bounds on what terminals report: occurred_at at most this far ahead of the
    # server's clock, and no older than the offline window (shorter than key retention, so
    # a key is remembered for as long as its operation may arrive).
    clock_skew_s: int = 300
    offline_window_days: int = 30
    # Enumeration: failed pairings per client address per minute before a lockout, and
    # card, member-number and member reads per terminal per minute (phones: above).
    pairing_failures_per_minute: int = 10
    pairing_lockout_s: int = 300
    lookups_per_minute: int = 120
    # The console's member searches per account per minute, and of them by whole phone
    # number (trying the numbers that end in a member's shown digits must take days).
    console_searches_per_minute: int = 60
    console_phone_searches_per_minute: int = 10
    # Inbound partner transfers: points credited per partner per store day, unless the
    # partner has its own cap in partner_daily_caps ("sky-miles=50000,other=1000").
    partner_daily_points: int = 1_000_000
    partner_daily_caps: tuple[tuple[str, int], ...] = ()
    # The store-wide phone key stays here: terminals send numbers over TLS and the server
    # keys them. Only for terminals from before that (which ask for the key when pairing)
    # may a store turn this on, LOYALTY_SERVER_SHARE_PHONE_KEY=1, knowing what a stolen
    # terminal then gives away.
    share_phone_key: bool = False
    # The store's time zone (IANA name): days, years and tier periods, daily caps, birthdays
    # and expiry dates are the store's, never UTC's. Points expire daily at expiry_time,
    # store time, in the background ("" turns that off: run `loyalty-server expire` from
    # cron or a systemd timer instead).
    timezone: str = "UTC"
    expiry_time: str = "03:30"
    # The programme's secure-card (NTAG 424 DNA SUN) keys, a TOML file readable by its owner
    # only (pos_client.sun.load_sun_keys); None: taps of secure cards are not verified here.
    sun_keys_file: Path | None = None
    passes: PassSettings = PassSettings()

    def __post_init__(self) -> None:
        if not known_timezone(self.timezone):
            raise ValueError(
                f"LOYALTY_SERVER_TIMEZONE: not a known time zone: {self.timezone!r}"
                " (an IANA name, e.g. Europe/Riga)"
            )
        if self.expiry_time:
            parse_time_of_day(self.expiry_time)
        if not 1 <= self.max_lines_per_sale <= 500:  # the operation format's own bound
            raise ValueError("LOYALTY_SERVER_MAX_LINES_PER_SALE: expected 1 to 500")
        if not 0 < self.offline_window_days < self.key_retention_days:
            raise ValueError(
                f"offline window ({self.offline_window_days} days) must be at least a day and "
                f"shorter than the key retention ({self.key_retention_days} days): an operation "
                "older than its key's retention could be applied twice"
            )

    def partner_cap(self, partner_id: str) -> int:
        return dict(self.partner_daily_caps).get(partner_id, self.partner_daily_points)


def parse_caps(text: str) -> tuple[tuple[str, int], ...]:
    """'a=1,b=2' -> (('a', 1), ('b', 2)); a clear error on anything else."""
    caps = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit():
            raise ValueError(f"partner daily caps: expected NAME=POINTS, got {item!r}")
        caps.append((name.strip(), int(value)))
    return tuple(caps)


# URL schemes people write for PostgreSQL, and the driver this server speaks it with.
POSTGRES_SCHEMES = ("postgres://", "postgresql://")


def database_url_of(url: str) -> str:
    """`postgres://…` and `postgresql://…` (libpq's and Heroku's spelling) mean psycopg 3."""
    for scheme in POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def from_environment(**overrides: object) -> ServerSettings:
    env = os.environ
    values: dict[str, object] = {
        "database_url": env.get("LOYALTY_SERVER_DATABASE_URL", ServerSettings.database_url),
        "program": env.get("LOYALTY_SERVER_PROGRAM", ServerSettings.program),
        "config_dir": Path(env.get("LOYALTY_SERVER_CONFIG_DIR", str(default_config_dir()))),
        "phone_key_file": Path(env.get("LOYALTY_SERVER_PHONE_KEY_FILE", "store-phone.key")),
    }
    for spec in fields(ServerSettings):
        if spec.type != "int":
            continue
        raw = env.get(f"LOYALTY_SERVER_{spec.name.upper()}", "").strip()
        if raw and not raw.isdigit():
            raise ValueError(f"LOYALTY_SERVER_{spec.name.upper()}: expected a whole number")
        values[spec.name] = int(raw) if raw else spec.default
    if int(values["batches_at_once"]) < 1:  # type: ignore[call-overload]
        raise ValueError("LOYALTY_SERVER_BATCHES_AT_ONCE: expected 1 or more")
    values["timezone"] = env.get("LOYALTY_SERVER_TIMEZONE", "").strip() or "UTC"
    values["expiry_time"] = env.get(
        "LOYALTY_SERVER_EXPIRY_TIME", ServerSettings.expiry_time
    ).strip()
    sun_keys = env.get("LOYALTY_SERVER_SUN_KEYS_FILE", "").strip()
    values["sun_keys_file"] = Path(sun_keys) if sun_keys else None
    values["partner_daily_caps"] = parse_caps(env.get("LOYALTY_SERVER_PARTNER_DAILY_CAPS", ""))
    share = env.get("LOYALTY_SERVER_SHARE_PHONE_KEY", "0").strip().lower()
    if share not in ("0", "1", "true", "false", ""):
        raise ValueError("LOYALTY_SERVER_SHARE_PHONE_KEY: expected 0 or 1")
    values["share_phone_key"] = share in ("1", "true")
    values["passes"] = passes_from(env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["database_url"] = database_url_of(str(values["database_url"]))
    return ServerSettings(**values)  # type: ignore[arg-type]
