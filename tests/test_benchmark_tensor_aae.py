"""benchmarks/tensor_aae.py: its tensorly peer computes our product, and
its synthetic batch drives the real train step."""

import pathlib
import sys

import jax
import numpy as np

# `benchmarks` is a top-level folder of the repository, not an installed
# package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import tensor_aae as bench  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_synthesis_case_agrees_with_tensorly_and_times_both():
  # `_synthesis_case` asserts ours == tensorly before timing.
  ours_s, peer_s = bench._synthesis_case((48, 3, 2, 4), 5, 1)
  assert ours_s > 0 and peer_s > 0


def test_step_case_runs_the_method_step_on_the_synthetic_batch():
  jitted, state, batch, config = bench._step_case("runlocal")
  assert batch["image"].shape == (config.batch_size, config.data.size,
                                  config.data.size, 3)
  state, metrics = jitted(state, batch, jax.random.PRNGKey(0))
  assert np.isfinite(float(metrics["loss"]))
  assert int(state["step"]) == 1
