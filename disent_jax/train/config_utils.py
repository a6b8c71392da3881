"""Helpers for config files: variant strings and validation."""

from typing import Any, Iterable

import ml_collections

# Keys the harness reads from every method's config.
HARNESS_KEYS = ("method", "seed", "total_steps", "batch_size",
                "log_every_steps", "checkpoint_every_steps",
                "keep_checkpoints", "mesh")


def parse_variant(arg: str | None, **defaults: Any
                  ) -> ml_collections.ConfigDict:
  """Parses a variant string "a=1,b=x,flag" over typed `defaults`.

  A bare name sets a bool to True. Values are converted to the type of the
  default.

  Args:
    arg: the text after ":" in `--config=configs/x.py:<arg>`, or None.
    **defaults: the known variant keys and their default values.

  Returns:
    A ConfigDict with every key of `defaults`.

  Raises:
    ValueError: an unknown key or a value of the wrong type.
  """
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, _, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if key not in defaults:
      raise ValueError(f"Unknown config variant {key!r} in {arg!r}; expected "
                       f"one of {sorted(defaults)}")
    kind = type(defaults[key])
    if kind is bool:
      if value.lower() not in ("", "1", "true", "yes", "0", "false", "no"):
        raise ValueError(f"Config variant {key}={value!r}: expected a bool")
      out[key] = value.lower() in ("", "1", "true", "yes")
    else:
      try:
        out[key] = kind(value)
      except ValueError as e:
        raise ValueError(f"Config variant {key}={value!r}: expected "
                         f"{kind.__name__}") from e
  return out


def check_keys(config: ml_collections.ConfigDict,
               keys: Iterable[str] = HARNESS_KEYS) -> None:
  """Raises a ValueError naming the harness keys missing from `config`."""
  missing = [k for k in keys if k not in config]
  if missing:
    raise ValueError(f"Config is missing harness keys {missing}; see "
                     "configs/demo.py for the full set.")
  if config.total_steps < 0 or config.batch_size <= 0:
    raise ValueError("config total_steps must be >= 0 and batch_size > 0, got "
                     f"{config.total_steps} and {config.batch_size}")
