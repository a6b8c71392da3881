"""Tests for disent_jax.ops.mesh (mesh validation)."""

import numpy as np
import pytest

from disent_jax.ops import mesh

from testutil.meshes import sphere as _sphere


def test_validate_mesh_accepts_a_good_mesh():
  verts, faces = _sphere(1)
  mesh.validate_mesh(verts, faces, expected_num_vertices=42, source="s.obj")


@pytest.mark.parametrize("case,pattern", [
    ("nan", r"mesh from face\.obj: 1 vertices have non-finite .* vertex 5"),
    ("range", r"mesh from face\.obj: 1 faces have vertex indices out of "
              r"range \[0, 42\), first face 3"),
    ("count", r"mesh from face\.obj: wrong vertex count: expected 5023 "
              r"vertices, got 42"),
    ("repeat", r"face\.obj: 1 degenerate faces repeat a vertex index, first "
               r"face 2 = \[1, 1, 4\]"),
    ("zero_area", r"face\.obj: 1 degenerate faces have zero area"),
    ("duplicate", r"face\.obj: 1 duplicate faces"),
    ("shape", r"face\.obj: vertices must have shape \[V, 3\]"),
    ("faces_shape", r"face\.obj: faces must have shape \[F, 3\]"),
    ("float_faces", r"face\.obj: faces must hold integer vertex indices"),
])
def test_validate_mesh_names_source_and_problem(case, pattern):
  verts, faces = _sphere(1)
  verts, faces = verts.copy(), faces.copy()
  expected = None
  if case == "nan":
    verts[5, 1] = np.nan
  elif case == "range":
    faces[3, 2] = 42
  elif case == "count":
    expected = 5023
  elif case == "repeat":
    faces[2] = [1, 1, 4]
  elif case == "zero_area":
    verts = np.concatenate([verts, [(verts[0] + verts[1]) / 2]])
    faces = np.concatenate([faces, [[0, 1, 42]]])
  elif case == "duplicate":
    faces = np.concatenate([faces, faces[7:8, ::-1]])
  elif case == "shape":
    verts = verts[:, :2]
  elif case == "faces_shape":
    faces = faces[:, :2]
  elif case == "float_faces":
    faces = faces.astype(np.float32)
  with pytest.raises(mesh.MeshError, match=pattern):
    mesh.validate_mesh(verts, faces, expected_num_vertices=expected,
                       source="face.obj")
  assert issubclass(mesh.MeshError, ValueError)


def test_validate_mesh_without_source_says_mesh():
  verts, faces = _sphere(1)
  verts[0, 0] = np.inf
  with pytest.raises(mesh.MeshError, match=r"^mesh: 1 vertices"):
    mesh.validate_mesh(verts, faces)
