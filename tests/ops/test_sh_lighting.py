"""Tests for disent_jax.ops.sh_lighting against scipy and closed forms."""

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import sph_harm_y

from disent_jax.ops import sh_lighting as sh

_LM = [(0, 0), (1, -1), (1, 0), (1, 1), (2, -2), (2, -1), (2, 0), (2, 1),
       (2, 2)]


class _Jitted:
  """Attribute access returns the jitted function of a module."""

  def __init__(self, module, static=("convention", "source", "target")):
    self._module, self._static = module, static

  def __getattr__(self, name):
    fn = getattr(self._module, name)
    params = inspect.signature(fn).parameters
    return jax.jit(fn, static_argnames=[s for s in self._static
                                        if s in params])


shj = _Jitted(sh)


def _rng(seed=0):
  return np.random.default_rng(seed)


def _random_angles(rng, n):
  theta = np.arccos(rng.uniform(-1, 1, n))  # polar angle in [0, pi]
  phi = rng.uniform(0, 2 * np.pi, n)  # azimuth in [0, 2 pi)
  return theta, phi


def _to_normal(theta, phi):
  return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi),
                   np.cos(theta)], -1)


def _real_sh_scipy(theta, phi):
  """Real orthonormal SH (graphics signs) from scipy's complex Y_l^m.

  scipy >= 1.15: sph_harm_y(l, m, theta=polar, phi=azimuth), with the
  Condon-Shortley phase; the (-1)^m factor below removes it.
  """
  cols = []
  for l, m in _LM:
    y = sph_harm_y(l, abs(m), theta, phi)
    if m > 0:
      cols.append(math.sqrt(2) * (-1) ** m * y.real)
    elif m < 0:
      cols.append(math.sqrt(2) * (-1) ** m * y.imag)
    else:
      cols.append(y.real)
  return np.stack(cols, -1)


def _discofacegan_basis_np(n):
  """The basis exactly as listed in REFERENCES.md (Deep3DFaceRecon)."""
  a = [np.pi, 2 * np.pi / np.sqrt(3.0), 2 * np.pi / np.sqrt(8.0)]
  c = [1 / np.sqrt(4 * np.pi), np.sqrt(3.0) / np.sqrt(4 * np.pi),
       3 * np.sqrt(5.0) / np.sqrt(12 * np.pi)]
  x, y, z = n[..., 0], n[..., 1], n[..., 2]
  return np.stack([
      a[0] * c[0] * np.ones_like(x), -a[1] * c[1] * y, a[1] * c[1] * z,
      -a[1] * c[1] * x, a[2] * c[2] * x * y, -a[2] * c[2] * y * z,
      a[2] * c[2] * 0.5 / np.sqrt(3.0) * (3 * z ** 2 - 1),
      -a[2] * c[2] * x * z, a[2] * c[2] * 0.5 * (x ** 2 - y ** 2)], -1)


def test_orthonormal_basis_matches_scipy_sph_harm_y():
  theta, phi = _random_angles(_rng(), 200)
  normals = _to_normal(theta, phi).astype(np.float32)
  ours = shj.sh_basis(normals, convention="orthonormal")
  np.testing.assert_allclose(ours, _real_sh_scipy(theta, phi), atol=1e-6)


def test_basis_is_orthonormal_on_the_sphere():
  # Gauss-Legendre in cos(theta) x uniform in phi: exact for degree <= 4.
  x, w = np.polynomial.legendre.leggauss(8)
  phi = np.arange(16) * 2 * np.pi / 16
  theta = np.arccos(x)
  tt, pp = np.meshgrid(theta, phi, indexing="ij")
  weights = (w[:, None] * np.full_like(pp, 2 * np.pi / 16)).ravel()
  normals = _to_normal(tt.ravel(), pp.ravel()).astype(np.float32)
  y = np.asarray(shj.sh_basis(normals, convention="orthonormal"), np.float64)
  gram = (y * weights[:, None]).T @ y
  np.testing.assert_allclose(gram, np.eye(9), atol=1e-5)


def test_discofacegan_basis_matches_reference_formula():
  theta, phi = _random_angles(_rng(1), 50)
  normals = _to_normal(theta, phi)
  ours = shj.sh_basis(normals.astype(np.float32))  # default convention
  np.testing.assert_allclose(ours, _discofacegan_basis_np(normals),
                             rtol=1e-5, atol=1e-6)
  coeffs = _rng(2).normal(size=(3, 9)).astype(np.float32)
  irr = shj.irradiance(normals.astype(np.float32), coeffs)
  np.testing.assert_allclose(irr, _discofacegan_basis_np(normals) @ coeffs.T,
                             rtol=1e-5, atol=1e-5)


def _rh_quadratic_irradiance(normals, coeffs):
  """Ramamoorthi & Hanrahan (2001) eq. 12: E(n) = n^T M n, n = (x, y, z, 1)."""
  c1, c2, c3, c4, c5 = 0.429043, 0.511664, 0.743125, 0.886227, 0.247708
  out = []
  for ch in range(3):
    l00, l1m1, l10, l11, l2m2, l2m1, l20, l21, l22 = coeffs[ch]
    m = np.array([
        [c1 * l22, c1 * l2m2, c1 * l21, c2 * l11],
        [c1 * l2m2, -c1 * l22, c1 * l2m1, c2 * l1m1],
        [c1 * l21, c1 * l2m1, c3 * l20, c2 * l10],
        [c2 * l11, c2 * l1m1, c2 * l10, c4 * l00 - c5 * l20]])
    nh = np.concatenate([normals, np.ones(normals.shape[:-1] + (1,))], -1)
    out.append(np.einsum("ni,ij,nj->n", nh, m, nh))
  return np.stack(out, -1)


def test_orthonormal_irradiance_matches_ramamoorthi_hanrahan_matrix():
  rng = _rng(3)
  theta, phi = _random_angles(rng, 100)
  normals = _to_normal(theta, phi)
  coeffs = rng.normal(size=(3, 9))
  ours = shj.irradiance(normals.astype(np.float32),
                        coeffs.astype(np.float32), convention="orthonormal")
  np.testing.assert_allclose(ours, _rh_quadratic_irradiance(normals, coeffs),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("convention", sh.CONVENTIONS)
def test_directional_light_closed_form(convention):
  rng = _rng(4)
  direction = np.array([0.3, -0.5, 0.8])
  direction /= np.linalg.norm(direction)
  color = np.array([1.0, 0.5, 2.0], np.float32)
  ambient = 0.2
  coeffs = shj.directional_light_sh(
      direction.astype(np.float32), color=color, ambient=ambient,
      convention=convention)
  assert coeffs.shape == (3, 9)
  theta, phi = _random_angles(rng, 300)
  normals = _to_normal(theta, phi)
  irr = np.asarray(shj.irradiance(normals.astype(np.float32), coeffs,
                                  convention=convention))
  t = normals @ direction
  # Sum_l A_l (2l+1)/(4 pi) P_l(t) for the clamped cosine, l <= 2.
  closed = 0.25 + 0.5 * t + (5.0 / 16.0) * 0.5 * (3 * t ** 2 - 1)
  np.testing.assert_allclose(irr, closed[:, None] * color + ambient,
                             rtol=1e-4, atol=1e-5)
  # ... which approximates the true clamped-cosine irradiance to < 0.1 I.
  true = np.maximum(t, 0)[:, None] * color + ambient
  assert np.max(np.abs(irr - true) / color) < 0.1


def test_directional_light_batched_and_default_ambient():
  dirs = _rng(5).normal(size=(4, 3)).astype(np.float32)
  coeffs = shj.directional_light_sh(dirs, color=jnp.ones(4))
  assert coeffs.shape == (4, 3, 9)
  unit = dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)
  irr = shj.irradiance(unit, coeffs)  # facing the light: 1.0625
  np.testing.assert_allclose(irr, 1.0625, rtol=1e-5)
  zero = shj.directional_light_sh(jnp.zeros(3), color=1.0, ambient=0.5)
  assert np.all(np.isfinite(zero))


def test_convert_coefficients_preserves_irradiance():
  rng = _rng(6)
  coeffs = rng.normal(size=(2, 3, 9)).astype(np.float32)
  normals = _to_normal(*_random_angles(rng, 20)).astype(np.float32)
  ortho = shj.convert_coefficients(coeffs, source="discofacegan",
                                   target="orthonormal")
  e1 = shj.irradiance(normals[:, None], coeffs[None])
  e2 = shj.irradiance(normals[:, None], ortho[None],
                      convention="orthonormal")
  np.testing.assert_allclose(e1, e2, rtol=1e-5, atol=1e-5)
  back = shj.convert_coefficients(ortho, source="orthonormal",
                                  target="discofacegan")
  np.testing.assert_allclose(back, coeffs, rtol=1e-6)


def test_shading_vertices_and_maps():
  rng = _rng(7)
  b, v, h, w = 2, 5, 3, 4
  coeffs = rng.normal(size=(b, 3, 9)).astype(np.float32)
  albedo = rng.uniform(size=(b, v, 3)).astype(np.float32)
  normals = rng.normal(size=(b, v, 3)).astype(np.float32)
  ours = shj.shade_vertices(albedo, normals, coeffs)
  unit = normals / np.linalg.norm(normals, axis=-1, keepdims=True)
  ref = np.stack([albedo[i] * (_discofacegan_basis_np(unit[i]) @ coeffs[i].T)
                  for i in range(b)])
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(
      shj.shade(albedo, unit, coeffs[:, None]), ref, rtol=1e-4, atol=1e-5)
  amap = rng.uniform(size=(b, h, w, 3)).astype(np.float32)
  nmap = rng.normal(size=(b, h, w, 3)).astype(np.float32)
  img = shj.shade_normal_map(amap, nmap, coeffs, convention="orthonormal")
  umap = nmap / np.linalg.norm(nmap, axis=-1, keepdims=True)
  for i in range(b):
    ref_i = amap[i] * np.asarray(shj.irradiance(umap[i], coeffs[i],
                                                convention="orthonormal"))
    np.testing.assert_allclose(img[i], ref_i, rtol=1e-4, atol=1e-5)
  mapped = jax.vmap(sh.shade_normal_map)(amap, nmap, coeffs)
  np.testing.assert_allclose(mapped, shj.shade_normal_map(amap, nmap, coeffs),
                             rtol=1e-5, atol=1e-6)


def test_zero_normals_no_nan_in_values_or_gradients():
  coeffs = jnp.asarray(_rng(8).normal(size=(3, 9)), jnp.float32)
  nmap = jnp.zeros((2, 2, 3))
  amap = jnp.ones((2, 2, 3))
  img = shj.shade_normal_map(amap, nmap, coeffs)
  assert np.all(np.isfinite(img))

  def loss(n, c):
    return jnp.sum(sh.shade_normal_map(amap, n, c) ** 2)

  gn, gc = jax.jit(jax.grad(loss, argnums=(0, 1)))(nmap, coeffs)
  assert np.all(np.isfinite(gn)) and np.all(np.isfinite(gc))
  np.testing.assert_array_equal(gn, 0.0)  # no 1/eps blow-up at n = 0


def test_irradiance_gradient_finite_differences():
  rng = _rng(9)
  n = rng.normal(size=(4, 3))
  c = rng.normal(size=(3, 9))
  w = rng.normal(size=(4, 3))

  def f_np(nn, cc):
    unit = nn / np.linalg.norm(nn, axis=-1, keepdims=True)
    return np.sum(w * unit * (_discofacegan_basis_np(unit) @ cc.T))

  def f(nn, cc):
    return jnp.sum(w * sh.shade_vertices(jnp.ones_like(nn), nn, cc)
                   * sh._safe_normalize(nn))

  gn, gc = jax.jit(jax.grad(f, argnums=(0, 1)))(
      jnp.asarray(n, jnp.float32), jnp.asarray(c, jnp.float32))
  eps = 1e-6
  for arr, g, pos in ((n, gn, 0), (c, gc, 1)):
    num = np.zeros_like(arr)
    for idx in np.ndindex(*arr.shape):
      d = np.zeros_like(arr)
      d[idx] = eps
      args_p, args_m = [n, c], [n, c]
      args_p[pos], args_m[pos] = arr + d, arr - d
      num[idx] = (f_np(*args_p) - f_np(*args_m)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-3, atol=1e-3)


def test_relight_and_swap():
  rng = _rng(10)
  coeffs = shj.directional_light_sh(
      rng.normal(size=(3, 3)).astype(np.float32), color=1.0, ambient=0.6)
  albedo = rng.uniform(0.2, 1, size=(3, 4, 4, 3)).astype(np.float32)
  normals = rng.normal(size=(3, 4, 4, 3)).astype(np.float32)
  normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
  image = shj.shade_normal_map(albedo, normals, coeffs)
  swapped = shj.swap_lighting(coeffs, shift=1)
  np.testing.assert_array_equal(swapped, np.roll(coeffs, 1, axis=0))
  relit = shj.relight(image, normals, coeffs, swapped)
  np.testing.assert_allclose(relit,
                             shj.shade_normal_map(albedo, normals, swapped),
                             rtol=1e-3, atol=1e-4)
  # Per-vertex images work the same way.
  relit_v = shj.relight(image[:, 0], normals[:, 0], coeffs, swapped)
  np.testing.assert_allclose(relit_v, relit[:, 0], rtol=1e-5, atol=1e-6)
  dark = shj.relight(image, jnp.zeros_like(normals), jnp.zeros_like(coeffs),
                     swapped)
  assert np.all(np.isfinite(dark))


def test_errors():
  with pytest.raises(ValueError, match="unknown SH convention"):
    sh.sh_basis(jnp.zeros(3), convention="deca")
  with pytest.raises(ValueError, match="coeffs"):
    sh.irradiance(jnp.zeros(3), jnp.zeros((9, 3)))
  with pytest.raises(ValueError, match="normals"):
    sh.sh_basis(jnp.zeros(4))
  with pytest.raises(ValueError, match=r"\[B, 3, 9\]"):
    sh.swap_lighting(jnp.zeros((3, 9)))
