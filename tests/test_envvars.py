"""Numeric environment settings: one parser, bad values are one line and exit status 2."""

from __future__ import annotations

import pytest
from conftest import run_cli

from samrl.envvars import SettingError, env_number


def test_env_number_reads_defaults_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAMRL_TEST_NUMBER", raising=False)
    assert env_number("SAMRL_TEST_NUMBER", 2.5) == 2.5
    monkeypatch.setenv("SAMRL_TEST_NUMBER", " ")
    assert env_number("SAMRL_TEST_NUMBER", 2.5) == 2.5
    monkeypatch.setenv("SAMRL_TEST_NUMBER", "3e-1")
    assert env_number("SAMRL_TEST_NUMBER", 2.5) == 0.3
    monkeypatch.setenv("SAMRL_TEST_NUMBER", "7")
    value = env_number("SAMRL_TEST_NUMBER", 1, integer=True)
    assert value == 7 and isinstance(value, int)


@pytest.mark.parametrize(
    ("raw", "integer", "minimum", "message"),
    [
        ("abc", False, 0, "$SAMRL_TEST_NUMBER: expected a number, got 'abc'"),
        ("1.5", True, 0, "$SAMRL_TEST_NUMBER: expected an integer, got '1.5'"),
        ("-1", False, 0, "$SAMRL_TEST_NUMBER: must be >= 0, got '-1'"),
        ("0", True, 1, "$SAMRL_TEST_NUMBER: must be >= 1, got '0'"),
    ],
)
def test_env_number_rejects_bad_values(
    monkeypatch: pytest.MonkeyPatch, raw: str, integer: bool, minimum: float, message: str
) -> None:
    monkeypatch.setenv("SAMRL_TEST_NUMBER", raw)
    with pytest.raises(SettingError) as info:
        env_number("SAMRL_TEST_NUMBER", 1, integer=integer, minimum=minimum)
    assert str(info.value) == message


def test_bad_policy_steps_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAMRL_POLICY_STEPS", "many")
    code, _, err = run_cli(["data", "make", "hopper-medium", "--size", "100"], capsys)
    assert code == 2
    assert err.strip() == (
        "samrl: setting error: $SAMRL_POLICY_STEPS: expected an integer, got 'many'"
    )
