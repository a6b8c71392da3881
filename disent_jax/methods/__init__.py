"""Methods, one subpackage per paper, each exposing `method.build(config)`."""

import importlib
import types


def load(name: str) -> types.ModuleType:
  """Imports `disent_jax.methods.<name>.method`.

  Args:
    name: the method's subpackage name, e.g. "demo" or "pointnet_id_vae".

  Returns:
    The method module, which has `build(config) -> Method`.

  Raises:
    ValueError: if no such method exists.
  """
  try:
    return importlib.import_module(f"disent_jax.methods.{name}.method")
  except ModuleNotFoundError as e:
    if e.name and e.name.startswith(f"disent_jax.methods.{name}"):
      raise ValueError(
          f"Unknown method {name!r} (config key 'method'): expected the name "
          "of a subpackage of disent_jax/methods with a method.py.") from e
    raise
