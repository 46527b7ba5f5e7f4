"""Helpers of the config checks run at solver start, before any data or model is loaded.

Each component checks the config keys it owns (`losses.mmd_config.MMDConfig.parse` the whole `mmd`
block, each solver module its own keys; `solvers.builders.validate_config` dispatches on
`cfg.solver`). Each error names the config key and the bad value, so a typo fails in seconds
rather than after hours of training.
"""
import typing as tp


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


def require(condition: bool, key: str, value: tp.Any, why: str) -> None:
    """Raise a `ConfigError` naming `key` and `value` unless `condition` holds."""
    if not condition:
        raise ConfigError(f"Invalid config `{key}={value!r}`: {why}")


def is_int(value: tp.Any) -> bool:
    """An integer that is not a bool (yaml's `true` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)
