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


def parse_choices(cls: tp.Any, block: tp.Optional[tp.Mapping[str, tp.Any]], name: str) -> tp.Any:
    """The dataclass `cls` from the config block `name` (absent: the defaults), each field one of the values
    listed in `cls.CHOICES[field]`; unknown keys and other values raise a ConfigError naming them."""
    import dataclasses
    block = block or {}
    known = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(block) - set(known))
    require(not unknown, name, unknown, f"unknown key(s); known keys: {known}")
    parsed = cls(**block)
    for field, allowed in cls.CHOICES.items():
        value = getattr(parsed, field)
        require(value in allowed, f'{name}.{field}', value, f"must be one of {allowed}")
    return parsed
