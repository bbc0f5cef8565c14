from __future__ import annotations

from pathlib import Path

import pytest

from pos_client.configfile import ConfigError
from pos_client.program import load_program
from pos_client.settings import Mode, load_settings
from tests.conftest import CONFIG_DIR


def test_defaults_load_and_are_typed() -> None:
    settings = load_settings(None, env={}, config_dir=CONFIG_DIR)
    assert settings.terminal.mode is Mode.CASHIER
    assert settings.store.region == "US"
    assert settings.sync.batch_size == 100


def test_user_file_and_environment_override_in_that_order(tmp_path: Path) -> None:
    user = tmp_path / "kiosk.toml"
    user.write_text('[terminal]\nmode = "kiosk"\nid = "K7"\n[store]\nregion = "ru"\n')
    env = {"POS_CLIENT__TERMINAL__ID": "K8", "POS_CLIENT__SYNC__BATCH_SIZE": "25"}
    settings = load_settings(user, env=env, config_dir=CONFIG_DIR)
    assert settings.terminal.mode is Mode.KIOSK
    assert settings.terminal.id == "K8"
    assert settings.store.region == "RU"
    assert settings.sync.batch_size == 25
    assert settings.sources[-1] == "environment"


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    user = tmp_path / "c.toml"
    user.write_text('[terminal]\nlanguage = "el"\n')
    settings = load_settings(None, env={"POS_CLIENT_CONFIG": str(user)}, config_dir=CONFIG_DIR)
    assert settings.terminal.language == "el"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[terminal]\nmode = "tablet"\n', "'terminal.mode'.*expected one of cashier, kiosk"),
        ('[sync]\nbatch_size = "many"\n', "'sync.batch_size'.*whole number"),
        ("[sync]\nbatch_size = 0\n", "'sync.batch_size'.*at least 1"),
        ('[store]\nregion = "XX"\n', "'store.region'.*not a known region"),
        ('[store]\ncolour = "red"\n', "'store.colour'.*unknown key"),
        ('[backend]\nkind = "http"\nurl = "ftp://x"\n', "'backend.url'"),
        ("[offline]\nredeem_on_uid = 3\n", "'offline.redeem_on_uid'.*true or false"),
        ('terminal = "x"\n', "'terminal'.*expected a table"),
        (
            '[[readers]]\nkind = "simulated"\nname = "sim"\nport = 70000\n',
            r"'readers\[0\]\.port'.*at most 65535",
        ),
        (
            '[[readers]]\nkind = "simulated"\nport = -1\n[[readers]]\nkind = "serial"\n',
            r"'readers\[0\]\.port'.*at least 0",
        ),
        (
            '[[readers]]\nkind = "simulated"\nname = "a"\n'
            '[[readers]]\nkind = "serial"\nname = "a"\n',
            r"'readers\[1\]\.name'.*two readers",
        ),
        ("[terminal\n", "not valid TOML"),
    ],
)
def test_a_bad_user_file_names_the_key_and_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    user = tmp_path / "bad.toml"
    user.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(user, env={}, config_dir=CONFIG_DIR)
    assert "\n" not in str(caught.value)
    if "TOML" not in message:
        assert str(user) in str(caught.value)


def test_a_bad_environment_override_names_the_variable_source() -> None:
    with pytest.raises(ConfigError, match=r"'sync.interval_s' \(environment\)"):
        load_settings(None, env={"POS_CLIENT__SYNC__INTERVAL_S": "soon"}, config_dir=CONFIG_DIR)
    with pytest.raises(ConfigError, match="unknown section"):
        load_settings(None, env={"POS_CLIENT__NOPE__X": "1"}, config_dir=CONFIG_DIR)


def test_a_bad_reader_port_names_the_file_given_by_the_environment(tmp_path: Path) -> None:
    user = tmp_path / "desk.toml"
    user.write_text('[[readers]]\nkind = "simulated"\nname = "sim"\nport = 70000\n')
    with pytest.raises(ConfigError, match=rf"'readers\[0\]\.port' \({user}\)"):
        load_settings(None, env={"POS_CLIENT_CONFIG": str(user)}, config_dir=CONFIG_DIR)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", env={}, config_dir=CONFIG_DIR)


def test_malformed_program_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'id = "x"\nname = "X"\n[earn]\nrate = "lots"\n[tiers]\n[[tiers.levels]]\nid = "a"\n'
        'name = "A"\n'
    )
    with pytest.raises(ConfigError, match=r"'earn.rate'.*expected a number"):
        load_program(str(bad), CONFIG_DIR)
    bad.write_text(
        'id = "x"\nname = "X"\n[earn]\n[tiers]\n[[tiers.levels]]\nid = "a"\n'
        'name = "A"\nthreshold = 5\n'
    )
    with pytest.raises(ConfigError, match=r"'tiers.levels'.*first at 0"):
        load_program(str(bad), CONFIG_DIR)
    with pytest.raises(ConfigError, match="unknown program preset 'nope'"):
        load_program("nope", CONFIG_DIR)


@pytest.mark.parametrize("example", sorted((CONFIG_DIR / "examples").glob("*.toml")))
def test_shipped_example_configs_load(example: Path) -> None:
    settings = load_settings(example, env={}, config_dir=CONFIG_DIR)
    load_program(settings.program, CONFIG_DIR)
    assert settings.terminal.id != "T1"


def test_acked_retention_defaults_to_30_days_and_is_bounded() -> None:
    assert load_settings(None, env={}, config_dir=CONFIG_DIR).sync.acked_retention_days == 30
    env = {"POS_CLIENT__SYNC__ACKED_RETENTION_DAYS": "90"}
    assert load_settings(None, env=env, config_dir=CONFIG_DIR).sync.acked_retention_days == 90
    for bad, why in (("0", "at least 1"), ("99999", "at most 3650"), ("soon", "whole number")):
        env = {"POS_CLIENT__SYNC__ACKED_RETENTION_DAYS": bad}
        with pytest.raises(ConfigError, match=rf"'sync.acked_retention_days'.*{why}"):
            load_settings(None, env=env, config_dir=CONFIG_DIR)
