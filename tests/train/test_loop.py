"""The training loop end to end on the demo method (in-process)."""

import json
import logging
import pathlib

import jax
import numpy as np
import pytest

from disent_jax import methods
from disent_jax.train import checkpointing
from disent_jax.train import loop
from disent_jax.train import partitioning
from disent_jax.train import state as state_lib

from testutil.harness import demo_config, train_demo


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  """An uninterrupted 20-step run (checkpoints every 10 steps)."""
  workdir = tmp_path_factory.mktemp("straight")
  result = train_demo(workdir, total_steps=20)
  return workdir, loop.params_fingerprint(result.state)


def test_run_writes_all_outputs_and_learns(straight):
  workdir, _ = straight
  names = {p.name for p in pathlib.Path(workdir).iterdir()}
  assert {"config.json", "metrics.jsonl", "metrics.json", "report.md",
          "tensorboard", "checkpoints", "loss.png"} <= names
  config = json.loads((workdir / "config.json").read_text())
  assert config["method"] == "demo" and config["total_steps"] == 20
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text()
          .splitlines()]
  assert [r["step"] for r in rows] == [10, 20]
  assert {"loss", "l2_grads", "l2_params"} <= set(rows[0])
  assert rows[-1]["loss"] < rows[0]["loss"]
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  metrics = json.loads((workdir / "metrics.json").read_text())
  assert 0 < metrics["eval_mse"] < 1
  assert "eval_mse" in (workdir / "report.md").read_text()


def test_same_seed_is_bit_identical_and_resume_matches(straight, tmp_path):
  _, expected = straight
  train_demo(tmp_path, total_steps=10)
  resumed = train_demo(tmp_path, total_steps=20)
  assert resumed.step == 20
  assert loop.params_fingerprint(resumed.state) == expected


def test_other_seed_differs(straight, tmp_path):
  _, expected = straight
  other = train_demo(tmp_path, total_steps=20, seed=1)
  assert loop.params_fingerprint(other.state) != expected


def test_corrupt_latest_checkpoint_falls_back_with_warning(
    straight, tmp_path, caplog):
  _, expected = straight
  train_demo(tmp_path, total_steps=20)
  latest = tmp_path / "checkpoints" / "20" / "state"
  for f in latest.rglob("*"):
    if f.is_file() and f.stat().st_size > 0:
      f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
  with caplog.at_level(logging.WARNING):
    resumed = train_demo(tmp_path, total_steps=20)
  assert any("unreadable" in r.getMessage() for r in caplog.records)
  assert loop.params_fingerprint(resumed.state) == expected
  moved = list((tmp_path / "checkpoints_corrupt").iterdir())
  assert len(moved) == 1 and moved[0].name.startswith("20-")


def test_checkpoint_from_other_architecture_names_arrays(tmp_path):
  train_demo(tmp_path, total_steps=10)
  with pytest.raises(checkpointing.CheckpointMismatchError,
                     match=r"params/Dense_\d/kernel"):
    train_demo(tmp_path, total_steps=20, **{"model.latent": 6})
  # Nothing was moved or deleted.
  assert (tmp_path / "checkpoints" / "10").is_dir()
  assert not (tmp_path / "checkpoints_corrupt").exists()


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  train_demo(tmp_path, total_steps=10)
  with pytest.raises(loop.NonFiniteError, match="step 11"):
    train_demo(tmp_path, total_steps=20,
               **{"optim.learning_rate": float("inf")})
  state, step = checkpointing.load_state(str(tmp_path))
  assert step == 10
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))


def test_sharded_step_equals_single_device_step():
  config = demo_config(**{"mesh.shape": (2, 4)})
  method = methods.load("demo").build(config)
  mesh = partitioning.make_mesh(config.mesh.shape, config.mesh.axes)
  it = method.data(state_lib.data_context(config, "train", mesh))
  local_batches = [next(it) for _ in range(3)]

  # Sharded: data over 2, Dense kernels split over the 4-way model axis.
  example = partitioning.make_global_batch(local_batches[0], mesh)
  state, _, shardings = state_lib.init_state(config, method, mesh, example)
  kernel = state["params"]["Dense_0"]["kernel"]
  assert kernel.sharding.spec == jax.sharding.PartitionSpec(None, "model")
  step = loop.make_train_step(config, method, mesh, shardings)
  for i, b in enumerate(local_batches):
    state, _ = step(state, partitioning.make_global_batch(b, mesh), i + 1)

  # Unsharded: everything on one device, plain jit.
  device = jax.devices()[0]
  key = jax.random.fold_in(jax.random.key(config.seed), 0x1D1)
  single = jax.jit(method.init)(key, jax.device_put(local_batches[0], device))
  root = jax.random.key(config.seed)
  plain = jax.jit(lambda s, b, k: method.train_step(s, b, k))
  for i, b in enumerate(local_batches):
    single, _ = plain(single, jax.device_put(b, device),
                      jax.random.fold_in(root, i + 1))
  for a, b in zip(jax.tree.leaves(partitioning.to_host(state)),
                  jax.tree.leaves(single)):
    np.testing.assert_allclose(a, np.asarray(b), rtol=2e-5, atol=2e-6)
