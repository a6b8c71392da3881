"""Tests for disent_jax.losses.geometry (numpy/trimesh references)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.losses import geometry
from disent_jax.ops import graph
from disent_jax.ops import laplacian
from disent_jax.synthface import template as template_lib

from testutil.gradcheck import check_gradient
from testutil.meshes import sphere as _sphere


def test_mean_curvature_energy_of_sphere_tends_to_4pi():
  verts, faces = _sphere(3)
  energy = float(geometry.mean_curvature_energy(verts.astype(np.float32), faces))
  np.testing.assert_allclose(energy, 4 * math.pi, rtol=0.01)
  # Scale invariant.
  scaled = float(geometry.mean_curvature_energy(
      (7.0 * verts).astype(np.float32), faces))
  np.testing.assert_allclose(scaled, energy, rtol=1e-4)


def test_smoothness_energies_match_numpy():
  verts, faces = _sphere(1)
  rng = np.random.default_rng(3)
  adj = graph.adjacency_from_faces(faces, num_vertices=42).toarray()
  nbr_mean = (adj @ verts) / adj.sum(1, keepdims=True)
  op = laplacian.uniform_laplacian_operator(faces, num_vertices=42)
  pred = (verts + 0.05 * rng.standard_normal((2, 42, 3))).astype(np.float32)
  delta_p = pred - np.einsum("uv,bvc->buc", adj, pred) / adj.sum(1)[:, None]
  delta_t = verts - nbr_mean
  # Paper 003 eq. (10).
  expected_l1 = np.abs(delta_p - delta_t).sum(axis=(1, 2))
  got = geometry.template_relative_smoothness(pred, verts, op)
  np.testing.assert_allclose(got, expected_l1, rtol=1e-4)
  expected_l2 = np.linalg.norm(delta_p - delta_t, axis=-1).mean(-1)
  got = geometry.template_relative_smoothness(pred, verts, op, norm="l2",
                                          reduction="mean")
  np.testing.assert_allclose(got, expected_l2, rtol=1e-4)
  # Zero for the template and any translate of it.
  zero = geometry.template_relative_smoothness(
      (verts + [1.0, -2.0, 3.0]).astype(np.float32), verts, op)
  np.testing.assert_allclose(zero, 0, atol=1e-4)
  np.testing.assert_allclose(
      geometry.laplacian_smoothness(pred, op),
      (delta_p ** 2).sum(-1).mean(-1), rtol=1e-4)


def test_smoothness_gradients_and_operator_normalisation():
  verts, faces = _sphere(1)
  rng = np.random.default_rng(4)
  pred = (verts + 0.05 * rng.standard_normal((2, 42, 3))).astype(np.float32)
  op = laplacian.uniform_laplacian_operator(faces, num_vertices=42)
  check_gradient(lambda x: jnp.sum(geometry.laplacian_smoothness(x, op)),
                 pred)
  check_gradient(lambda x: jnp.sum(geometry.template_relative_smoothness(
      x, verts, op, norm="l2")), pred)
  check_gradient(lambda x: jnp.sum(geometry.mean_curvature_energy(x, faces)),
                 pred)
  # The stiffness matrix's energy is its squared diagonal times the
  # row-normalised one's (5 / sqrt(3) per vertex on the icosahedron).
  ico, ico_faces = _sphere(0)
  x = (ico + 0.1 * rng.standard_normal(ico.shape)).astype(np.float32)
  stiff = graph.graph_operator(
      laplacian.cotangent_laplacian_matrix(ico, ico_faces))
  row = graph.graph_operator(laplacian.cotangent_laplacian_matrix(
      ico, ico_faces, normalization="row"))
  np.testing.assert_allclose(geometry.laplacian_smoothness(x, stiff),
                             25 / 3 * geometry.laplacian_smoothness(x, row),
                             rtol=1e-4)


def test_symmetry_loss_against_numpy_on_the_synthface_mirror():
  tpl = template_lib.template("1k")
  mirror = np.asarray(tpl.mirror)
  num = mirror.shape[0]
  rng = np.random.default_rng(5)
  albedo = rng.random((2, num, 3)).astype(np.float32)
  want = np.abs(albedo - albedo[:, mirror]).sum(-1).mean()
  np.testing.assert_allclose(jax.jit(geometry.symmetry_loss)(albedo, mirror),
                             want, rtol=1e-5)
  want_l2 = np.linalg.norm(albedo - albedo[:, mirror], axis=-1).sum()
  np.testing.assert_allclose(
      geometry.symmetry_loss(albedo, mirror, norm="l2", reduction="sum"),
      want_l2, rtol=1e-5)
  # A symmetric field costs nothing.
  sym = 0.5 * (albedo + albedo[:, mirror])
  np.testing.assert_allclose(geometry.symmetry_loss(sym, mirror), 0,
                             atol=1e-7)
  check_gradient(lambda a: geometry.symmetry_loss(a, mirror, norm="l2"),
                 albedo)
  with pytest.raises(ValueError, match="mirror"):
    geometry.symmetry_loss(albedo, mirror[:-1])


def test_orthogonality_regularizer_closed_form():
  rng = np.random.default_rng(7)
  a = rng.standard_normal((4, 6, 6)).astype(np.float32)
  expected = np.array([np.linalg.norm(np.eye(6) - m @ m.T, "fro") ** 2
                       for m in a])
  np.testing.assert_allclose(jax.jit(geometry.orthogonality_regularizer)(a),
                             expected, rtol=1e-5)
  q, _ = np.linalg.qr(a[0])
  np.testing.assert_allclose(geometry.orthogonality_regularizer(q), 0,
                             atol=1e-5)
  # By hand: 2 I gives ||I - 4 I||^2 = 9 k.
  np.testing.assert_allclose(
      geometry.orthogonality_regularizer(2 * jnp.eye(3)), 27.0)
  check_gradient(lambda m: jnp.sum(geometry.orthogonality_regularizer(m)), a)
