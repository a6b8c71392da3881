"""JAX's persistent compilation cache, on by default for every entry point.

A jitted function is compiled once per machine: later runs (a resumed job,
the evaluation command, the test suite's subprocesses, a notebook) read the
executable from disk instead of compiling it again.

Where the cache lives, in order:
  1. an explicit directory (the `--compilation_cache_dir` flag, or an
     argument to `enable`);
  2. the environment variable `DISENT_JAX_COMPILATION_CACHE` (an empty
     value, or `off`, disables the cache);
  3. `$XDG_CACHE_HOME/disent_jax/jax_cache` (default `~/.cache/...`).

JAX reads `JAX_COMPILATION_CACHE_DIR` itself; `enable` sets it as well so
that subprocesses inherit the same cache.
"""

import os
import pathlib

from absl import logging
import jax

ENV_VAR = "DISENT_JAX_COMPILATION_CACHE"
_OFF = ("", "0", "off", "false", "none")
# Programs that compile faster than this are not worth a disk entry.
MIN_COMPILE_SECONDS = 0.3


def user_cache_dir() -> pathlib.Path:
  """`$XDG_CACHE_HOME/disent_jax` (default `~/.cache/disent_jax`)."""
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base) / "disent_jax"


def default_directory() -> pathlib.Path:
  """`user_cache_dir() / "jax_cache"`."""
  return user_cache_dir() / "jax_cache"


def resolve(directory: str | os.PathLike | None = None) -> str | None:
  """The cache directory to use, or None if the cache is switched off."""
  if directory is not None:
    text = str(directory)
    return None if text.strip().lower() in _OFF else text
  if ENV_VAR in os.environ:
    text = os.environ[ENV_VAR]
    return None if text.strip().lower() in _OFF else text
  return str(default_directory())


def enable(directory: str | os.PathLike | None = None, *,
           min_compile_seconds: float = MIN_COMPILE_SECONDS) -> str | None:
  """Turns on the persistent compilation cache.

  Call before the first compilation. Safe to call more than once.

  Args:
    directory: the cache directory; None picks one as the module docstring
      says; "" or "off" switches the cache off.
    min_compile_seconds: compilations shorter than this are not stored.

  Returns:
    The directory in use, or None when the cache is off.
  """
  path = resolve(directory)
  if path is None:
    jax.config.update("jax_compilation_cache_dir", None)
    logging.info("JAX compilation cache: off")
    return None
  path = str(pathlib.Path(path).expanduser())
  try:
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
  except OSError as e:
    logging.warning("JAX compilation cache: cannot create %s (%s); "
                    "compiling without a cache", path, e)
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs",
                    float(min_compile_seconds))
  os.environ["JAX_COMPILATION_CACHE_DIR"] = path
  logging.info("JAX compilation cache: %s", path)
  return path
