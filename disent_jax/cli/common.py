"""Flag parsing shared by the train and eval commands."""

import difflib
import logging
import sys
from typing import Sequence

from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags


def _config_keys(argv: Sequence[str]) -> list[str]:
  """Dotted keys of the config named by --config=FILE[:ARG] (best effort)."""
  for arg in argv:
    if arg.startswith("--config="):
      path, _, variant = arg[len("--config="):].partition(":")
      try:
        from disent_jax.train import config_utils  # pylint: disable=g-import-not-at-top
        config = config_utils.load_config(path, variant or None)
      except Exception:  # pylint: disable=broad-exception-caught
        return []
      flat = []

      def walk(node, prefix):
        for k, v in node.items():
          if hasattr(v, "items"):
            walk(v, f"{prefix}{k}.")
          else:
            flat.append(f"{prefix}{k}")

      walk(config, "")
      return flat
  return []


def parse_flags(argv: Sequence[str]) -> list[str]:
  """Parses flags; a bad flag or config override exits with a short message.

  A config override of a key the (locked) config lacks, such as
  `--config.lerning_rate=1`, is reported with the key, the flag and the
  closest existing keys, without a traceback.
  """
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.stderr.write(f"FATAL flags error: {e}\nPass --help for usage.\n")
    sys.exit(2)
  except (AttributeError, KeyError) as e:
    overrides = [a for a in argv if a.startswith("--config.")]
    keys = _config_keys(argv)
    lines = []
    for arg in overrides:
      key = arg[len("--config."):].partition("=")[0]
      if keys and key not in keys:
        close = difflib.get_close_matches(key, keys, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        lines.append(f"  {arg}: the config has no key '{key}'{hint}")
    if not lines:
      lines.append(f"  {e!s}")
    sys.stderr.write("FATAL config error:\n" + "\n".join(lines) + "\n")
    sys.exit(2)
  except (TypeError, ValueError) as e:
    sys.stderr.write(f"FATAL config error: {e}\n")
    sys.exit(2)


class _QuietLibraries(logging.Filter):
  """Drops INFO lines of chatty libraries (Orbax logs every file it writes)."""

  _PATHS = ("/orbax/", "/grain/", "/tensorflow_datasets/")

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
      return True
    return not any(p in record.pathname for p in self._PATHS)


def quiet_library_logs() -> None:
  """Keeps disent_jax's INFO lines, hides the libraries' (absl handler)."""
  absl_logging.get_absl_handler().addFilter(_QuietLibraries())


# The flags of both commands, defined once so that both modules can be
# imported into one process (a notebook, a test).
CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/demo.py:runlocal.",
    lock_config=True)
WORKDIR = flags.DEFINE_string("workdir", None, "Run directory.")
STEP = flags.DEFINE_integer(
    "step", None, "disent-jax-eval: checkpoint step (default newest).")
flags.DEFINE_bool("distributed", False,
                  "Call jax.distributed.initialize() (multi-host).")
flags.DEFINE_string("coordinator_address", None,
                    "host:port of process 0; auto-detected if unset.")
flags.DEFINE_integer("num_processes", None,
                     "Number of processes; auto-detected if unset.")
flags.DEFINE_integer("process_id", None,
                     "This process's index; auto-detected if unset.")
flags.DEFINE_string(
    "compilation_cache_dir", None,
    "JAX persistent compilation cache directory; '' or 'off' disables it. "
    "Default: $DISENT_JAX_COMPILATION_CACHE, else "
    "~/.cache/disent_jax/jax_cache.")


def maybe_initialize_distributed() -> None:
  """Starts jax.distributed if --distributed (before other JAX calls)."""
  f = flags.FLAGS
  if f.distributed or f.coordinator_address:
    from disent_jax.train import partitioning  # pylint: disable=g-import-not-at-top
    partitioning.initialize_distributed(
        coordinator_address=f.coordinator_address,
        num_processes=f.num_processes, process_id=f.process_id)


def setup(argv: Sequence[str]):
  """Shared start of both commands: checks argv, quiets library logs, starts
  jax.distributed if asked, then loads the config and builds the method.

  Returns:
    (config, method).
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  quiet_library_logs()
  maybe_initialize_distributed()
  from disent_jax.train import compile_cache  # pylint: disable=g-import-not-at-top
  compile_cache.enable(flags.FLAGS.compilation_cache_dir)
  # Imported after jax.distributed so nothing touches devices before it.
  from disent_jax import methods  # pylint: disable=g-import-not-at-top
  from disent_jax.train import config_utils  # pylint: disable=g-import-not-at-top
  config = CONFIG.value
  config_utils.check_keys(config)
  return config, methods.load(config.method).build(config)
