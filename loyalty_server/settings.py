"""Server settings: command-line options over LOYALTY_SERVER_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pos_client.settings import default_config_dir


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


def from_environment(**overrides: object) -> ServerSettings:
    env = os.environ
    values: dict[str, object] = {
        "database_url": env.get("LOYALTY_SERVER_DATABASE_URL", ServerSettings.database_url),
        "program": env.get("LOYALTY_SERVER_PROGRAM", ServerSettings.program),
        "config_dir": Path(env.get("LOYALTY_SERVER_CONFIG_DIR", str(default_config_dir()))),
        "phone_key_file": Path(env.get("LOYALTY_SERVER_PHONE_KEY_FILE", "store-phone.key")),
    }
    for name, default in (
        ("phone_lookups_per_minute", 30),
        ("flag_earnings_per_day", 20),
        ("key_retention_days", 90),
    ):
        raw = env.get(f"LOYALTY_SERVER_{name.upper()}")
        values[name] = int(raw) if raw else default
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ServerSettings(**values)  # type: ignore[arg-type]
