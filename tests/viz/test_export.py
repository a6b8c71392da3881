"""Tests for disent_jax.viz.export (.ply / .obj through trimesh)."""

import numpy as np
import pytest
import trimesh

from disent_jax.viz import export


def _mesh():
  v = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10],
                [0, 0, 0.0]])  # a duplicate vertex that must survive
  f = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [4, 1, 2]])
  return v, f


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_roundtrip_keeps_vertices_faces_and_colours(tmp_path, suffix):
  v, f = _mesh()
  values = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
  path = export.export_mesh(str(tmp_path / f"m{suffix}"), v, f,
                            values=values, cmap="viridis")
  back = trimesh.load(path, process=False)
  np.testing.assert_allclose(back.vertices, v, atol=1e-6)
  np.testing.assert_array_equal(back.faces, f)
  colors = np.asarray(back.visual.vertex_colors)[:, :3]
  assert colors.shape == (5, 3)
  assert not np.array_equal(colors[0], colors[-1])  # min vs max value


def test_plain_export_and_errors(tmp_path):
  v, f = _mesh()
  path = export.export_mesh(str(tmp_path / "a" / "plain.ply"), v, f)
  back = trimesh.load(path, process=False)
  np.testing.assert_allclose(back.vertices, v)
  export.export_mesh(str(tmp_path / "c.ply"), v, f,
                     vertex_colors=np.full((5, 3), 0.5))
  with pytest.raises(ValueError):
    export.export_mesh(str(tmp_path / "m.stl"), v, f)
  with pytest.raises(ValueError):
    export.export_mesh(str(tmp_path / "m.ply"), v, f + 10)
