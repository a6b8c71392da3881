"""Device prefetch and the loop that does not wait on the host."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax import methods
from disent_jax.data import pipeline
from disent_jax.train import checkpointing
from disent_jax.train import loop
from disent_jax.train import partitioning
from disent_jax.train import prefetch

from testutil.harness import demo_config


def _iterator(n=80, batch=8, seed=0):
  source = pipeline.ArraySource({"x": np.arange(n, dtype=np.float32)[:, None],
                                 "i": np.arange(n)})
  return pipeline.batched_iterator(source, batch_size=batch, seed=seed,
                                   process_index=0, process_count=1)


def _mesh():
  return partitioning.make_mesh((-1, 1), ("data", "model"))


def test_prefetched_batches_and_states_match_direct_reading():
  direct = _iterator()
  wanted, states = [], []
  for _ in range(7):
    wanted.append(next(direct)["i"])
    states.append(direct.get_state())
  with prefetch.DevicePrefetcher(_iterator(), _mesh(), size=3) as batches:
    for k in range(7):
      batch = next(batches)
      assert isinstance(batch["i"], jax.Array)
      assert batch["i"].sharding.spec[0] == "data"
      np.testing.assert_array_equal(np.asarray(batch["i"]), wanted[k])
      # The state of the batch handed out, not of those read ahead.
      assert json.dumps(batches.get_state()) == json.dumps(states[k])
    # Resuming a fresh iterator from that state continues exactly.
    resumed = _iterator()
    resumed.set_state(batches.get_state())
    np.testing.assert_array_equal(next(resumed)["i"],
                                  np.asarray(next(batches)["i"]))


def test_prefetcher_set_state_before_reading_and_not_after():
  direct = _iterator()
  for _ in range(3):
    next(direct)
  batches = prefetch.DevicePrefetcher(_iterator(), _mesh())
  batches.set_state(direct.get_state())
  np.testing.assert_array_equal(np.asarray(next(batches)["i"]),
                                next(direct)["i"])
  with pytest.raises(RuntimeError, match="after reading started"):
    batches.set_state(direct.get_state())
  batches.close()


class _Failing:
  """An iterator whose third batch fails like a reader on a bad file."""

  def __init__(self):
    self.n = 0

  def get_state(self):
    return {"n": self.n}

  def set_state(self, state):
    self.n = state["n"]

  def __next__(self):
    self.n += 1
    if self.n == 3:
      raise ValueError("mesh from /data/bad.ply: not a readable PLY mesh")
    if self.n > 5:
      raise StopIteration
    return {"x": np.full((8, 2), self.n, np.float32)}


def test_reader_errors_reach_the_training_thread_unchanged():
  batches = prefetch.DevicePrefetcher(_Failing(), _mesh(), size=2)
  next(batches)
  next(batches)
  with pytest.raises(ValueError, match="bad.ply: not a readable PLY"):
    next(batches)
  with pytest.raises(StopIteration):
    next(batches)
  batches.close()


def test_end_of_input_stops_iteration():
  it = _Failing()
  it.n = 3  # Past the bad batch: batches 4 and 5, then the end.
  batches = prefetch.DevicePrefetcher(it, _mesh())
  assert [float(np.asarray(b["x"])[0, 0]) for b in batches] == [4.0, 5.0]


def _nan_at(method, bad_step):
  """The demo method with its loss made NaN at `bad_step` (1-based)."""

  def init(key, batch):
    return {"inner": method.init(key, batch), "tick": jnp.zeros((), jnp.int32)}

  def train_step(state, batch, key):
    inner, metrics = method.train_step(state["inner"], batch, key)
    tick = state["tick"] + 1
    metrics = dict(metrics)
    metrics["loss"] = jnp.where(tick == bad_step, jnp.nan, metrics["loss"])
    return {"inner": inner, "tick": tick}, metrics

  return dataclasses.replace(method, init=init, train_step=train_step)


def test_nan_between_log_steps_names_its_step_and_keeps_the_good_checkpoint(
    tmp_path):
  config = demo_config(total_steps=20, log_every_steps=50,
                       checkpoint_every_steps=4)
  method = _nan_at(methods.load("demo").build(config), bad_step=7)
  with pytest.raises(loop.NonFiniteError, match="at step 7:.*loss"):
    loop.train(config, str(tmp_path), method)
  # Step 8 would have been saved: the check before it stopped the run.
  _, step = checkpointing.load_state(str(tmp_path))
  assert step == 4
  assert not (tmp_path / "checkpoints" / "8").exists()


def test_compile_time_is_written_once(tmp_path):
  config = demo_config(total_steps=6, log_every_steps=2)
  loop.train(config, str(tmp_path), methods.load("demo").build(config))
  records = [json.loads(line) for line in
             (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [2, 4, 6]
  assert records[0]["compile_s"] > 0
  assert all("compile_s" not in r for r in records[1:])
