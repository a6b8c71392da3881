"""Mesh construction, regex sharding rules and global batch assembly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from disent_jax.train import partitioning


def test_make_mesh_fills_minus_one():
  mesh = partitioning.make_mesh((-1, 2), ("data", "model"))
  assert dict(mesh.shape) == {"data": 4, "model": 2}


@pytest.mark.parametrize("shape", [(3, -1), (16, 1), (-1, -1)])
def test_make_mesh_rejects_bad_shapes(shape):
  with pytest.raises(ValueError, match="mesh.shape"):
    partitioning.make_mesh(shape, ("data", "model"))


def test_state_shardings_follow_first_matching_rule():
  mesh = partitioning.make_mesh((2, 4), ("data", "model"))
  abstract = {
      "params": {"Dense_0": {"kernel": jax.ShapeDtypeStruct((6, 8), jnp.float32),
                             "bias": jax.ShapeDtypeStruct((8,), jnp.float32)},
                 "Dense_1": {"kernel": jax.ShapeDtypeStruct((8, 3), jnp.float32)}},
      "step": jax.ShapeDtypeStruct((), jnp.int32),
  }
  rules = [(r"Dense_\d+/kernel$", (None, "model")), (r"bias", ("model",))]
  sh = partitioning.state_shardings(abstract, mesh, rules)
  assert sh["params"]["Dense_0"]["kernel"].spec == P(None, "model")
  assert sh["params"]["Dense_0"]["bias"].spec == P("model")
  # 3 is not divisible by the model axis (4): replicated instead.
  assert sh["params"]["Dense_1"]["kernel"].spec == P()
  assert sh["step"].spec == P()


def test_make_global_batch_splits_over_data_axis():
  mesh = partitioning.make_mesh((4, 2), ("data", "model"))
  local = {"x": np.arange(8 * 3, dtype=np.float32).reshape(8, 3)}
  batch = partitioning.make_global_batch(local, mesh)
  assert batch["x"].shape == (8, 3)
  assert batch["x"].sharding.spec == P("data")
  np.testing.assert_array_equal(np.asarray(batch["x"]), local["x"])
  # Each data shard holds 2 rows.
  assert {s.data.shape for s in batch["x"].addressable_shards} == {(2, 3)}


def test_local_batch_size_checks_divisibility():
  mesh = partitioning.make_mesh((8, 1), ("data", "model"))
  assert partitioning.local_batch_size(16, mesh) == 16
  with pytest.raises(ValueError, match="batch_size=12"):
    partitioning.local_batch_size(12, mesh)


def test_path_to_str_joins_keys():
  tree = {"a": [{"b": 1}]}
  (path, _), = jax.tree_util.tree_flatten_with_path(tree)[0]
  assert partitioning.path_to_str(path) == "a/0/b"
