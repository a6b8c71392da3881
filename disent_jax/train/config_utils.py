"""Helpers for config files: variant strings and validation."""

import importlib.util
import pathlib
from typing import Any, Iterable

import ml_collections

# Keys the harness reads from every method's config.
HARNESS_KEYS = ("method", "seed", "total_steps", "batch_size",
                "log_every_steps", "checkpoint_every_steps",
                "keep_checkpoints", "mesh")


def harness_config(method: str, *, total_steps: int, batch_size: int
                   ) -> ml_collections.ConfigDict:
  """A config with every key the harness reads, at its defaults.

  Args:
    method: the subpackage of `disent_jax.methods`.
    total_steps: optimisation steps.
    batch_size: the global batch (all processes and devices together).

  Returns:
    A ConfigDict; method configs add `data`, `model`, `optim`, ... to it.
  """
  c = ml_collections.ConfigDict()
  c.method = method
  c.seed = 0
  c.total_steps = total_steps
  c.batch_size = batch_size
  c.log_every_steps = 50
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 3
  c.async_checkpointing = True
  c.progress_bar = True
  c.progress_metrics = ()  # Scalars on the bar (default: loss + 2 more).
  c.eval_at_end = True
  # Global batches read, collated and copied to the devices ahead of the
  # step by a background thread.
  c.prefetch_batches = 2
  # Steps the host may dispatch before waiting for the oldest to finish;
  # metrics are fetched (and checked for NaN/inf) only at log and
  # checkpoint steps.
  c.max_steps_in_flight = 2
  # Log steps/s, the step's GFLOP (XLA cost analysis), GFLOP/s and the
  # share of this machine's measured matmul peak.
  c.report_utilisation = True
  # "a:b": a JAX profiler trace of steps a..b in <workdir>/profile
  # (TensorBoard's profile plugin reads it).
  c.profile_steps = ""
  c.mesh = ml_collections.ConfigDict()
  c.mesh.shape = (-1, 1)  # (data, model); -1: all remaining devices.
  c.mesh.axes = ("data", "model")
  # (regex, partition-spec tuple) pairs over "/"-joined state paths; empty:
  # the method's own rules.
  c.sharding_rules = ()
  return c


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


def find_configs_dir(start: str | pathlib.Path | None = None
                     ) -> pathlib.Path:
  """The repository's `configs/` folder, searched from `start` (default the
  working directory) upwards.

  Raises:
    FileNotFoundError: no parent folder holds `configs/`.
  """
  here = pathlib.Path(start or pathlib.Path.cwd()).absolute()
  for folder in (here, *here.parents):
    if (folder / "configs").is_dir():
      return folder / "configs"
  raise FileNotFoundError(f"No configs/ folder in {here} or its parents: run "
                          "from inside the repository or pass a file path.")


def load_config(name_or_path: str | pathlib.Path, arg: str | None = None
                ) -> ml_collections.ConfigDict:
  """Loads a config file as `--config=FILE:ARG` would (for notebooks, tests).

  Args:
    name_or_path: a config name ("pointnet_id_vae", looked up in the
      repository's configs/) or a path to a config .py file.
    arg: the variant string after ":" (None: defaults).

  Returns:
    `get_config(arg)` of that file.

  Raises:
    FileNotFoundError: no such config.
  """
  path = pathlib.Path(name_or_path)
  if path.suffix != ".py":
    path = find_configs_dir() / f"{path.name}.py"
  if not path.is_file():
    raise FileNotFoundError(f"No config file {path}")
  spec = importlib.util.spec_from_file_location(f"config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)
