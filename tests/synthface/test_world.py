"""Tests of the SynthFace world API and occluders."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.ops import mesh as mesh_ops
from disent_jax.synthface import expression as expr
from disent_jax.synthface import occluder as occ
from disent_jax.synthface import sampling
from disent_jax.synthface import world as world_lib


def test_occluder_topology_and_kinds():
  coords, faces, part = occ.topology()
  p = sampling.subject_identity(0, 0)
  fn = jax.jit(occ.occluder_mesh)
  shown = {}
  for kind in range(len(occ.KINDS)):
    verts, col = fn(p, kind, jnp.asarray([0.5, 0.0, 0.0, 0.0]))
    verts = np.asarray(verts, np.float64)
    assert verts.shape == (len(coords), 3) and col.shape == verts.shape
    tri = verts[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0],
                                         tri[:, 2] - tri[:, 0]), axis=1)
    shown[kind] = area > 1e-6
    if kind:
      mesh_ops.validate_mesh(verts, faces[shown[kind]], source=occ.KINDS[kind])
  assert not shown[0].any()
  assert np.all(part[faces[shown[1]][:, 0]] == 1)
  assert np.all(part[faces[shown[2]][:, 0]] >= 2)
  # The fringe slants: its lower edge is higher on one side.
  verts, _ = fn(p, 1, jnp.asarray([1.0, 0.0, 0.0, 0.0]))
  edge = np.asarray(verts)[(part == 1) & (coords[:, 1] == 0)]
  assert edge[np.argmax(edge[:, 0]), 1] - edge[np.argmin(edge[:, 0]), 1] > 10


def test_world_mesh_api_is_deterministic():
  w = world_lib.world("1k")
  weights = jnp.asarray(expr.one_hot("smile"))
  v1, n1 = w.subject_mesh(0, 3, weights)
  v2, n2 = w.subject_mesh(0, 3, weights)
  np.testing.assert_array_equal(np.asarray(v1), np.asarray(v2))
  np.testing.assert_array_equal(np.asarray(n1), np.asarray(n2))
  assert v1.shape == (w.num_vertices, 3)
  assert np.abs(np.asarray(v1) - np.asarray(n1)).max() > 1.0
  v0, n0 = w.subject_mesh(0, 3, jnp.zeros(expr.NUM_EXPRESSIONS))
  np.testing.assert_allclose(np.asarray(v0), np.asarray(n0), atol=1e-3)


@pytest.mark.slow
def test_image_example_is_deterministic_with_ground_truth():
  w = world_lib.world("1k")
  a = w.image_example(0, 5, 2, size=64)
  b = w.image_example(0, 5, 2, size=64)
  for k in a:
    np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
  for k in ("image", "mask", "normals", "albedo", "shading", "depth",
            "landmarks_2d", "landmarks_visible", "subject", "identity",
            "expression", "pose", "sh", "near_frontal", "occluder_mask"):
    assert k in a
  assert int(a["subject"]) == 2
  np.testing.assert_array_equal(a["identity"], sampling.subject_identity(0, 2))
  assert bool(a["near_frontal"]) == bool(
      sampling.near_frontal(np.asarray(a["pose"])))
  with pytest.raises(ValueError, match="size"):
    w.image_example(0, 0, 0, size=100)
