"""Test set-up: 8 fake CPU devices, float32 matmuls, the compilation cache.

The persistent compilation cache (`disent_jax.train.compile_cache`, default
~/.cache/disent_jax/jax_cache; DISENT_JAX_COMPILATION_CACHE=off disables it)
is shared by the test workers and the subprocesses the tests start
(command-line runs, notebooks), so each program is compiled once.
"""

import os

# Must be set before JAX is imported anywhere in the test process.
os.environ["XLA_FLAGS"] = " ".join([
    os.environ.get("XLA_FLAGS", ""),
    "--xla_force_host_platform_device_count=8",
]).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # pylint: disable=g-import-not-at-top

jax.config.update("jax_default_matmul_precision", "highest")

from disent_jax.train import compile_cache  # pylint: disable=g-import-not-at-top,wrong-import-position

compile_cache.enable()
