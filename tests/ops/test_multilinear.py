"""Tests for disent_jax.ops.multilinear against tensorly and numpy loops."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorly as tl
from tensorly import tenalg
from tensorly.decomposition import tucker as tl_tucker

from disent_jax.ops import multilinear as ml

tl.set_backend("numpy")

_ATOL = 1e-5
_RTOL = 1e-5


def _rng(seed=0):
  return np.random.default_rng(seed)


def _normal(rng, *shape):
  return rng.normal(size=shape).astype(np.float32)


# ----------------------------------------------------------------------------
# Unfolding and mode products.


def _unfold_loop(t, mode):
  """Row-major unfolding by its definition, with an explicit index loop."""
  rest = [s for i, s in enumerate(t.shape) if i != mode]
  out = np.zeros((t.shape[mode], int(np.prod(rest))), t.dtype)
  for idx in itertools.product(*[range(s) for s in t.shape]):
    other = [i for j, i in enumerate(idx) if j != mode]
    col = np.ravel_multi_index(other, rest) if rest else 0
    out[idx[mode], col] = t[idx]
  return out


@pytest.mark.parametrize("mode", [0, 1, 2, -1])
def test_unfold_fold_match_tensorly_and_definition(mode):
  t = _normal(_rng(), 3, 4, 5)
  ours = jax.jit(ml.unfold, static_argnums=1)(t, mode)
  np.testing.assert_array_equal(ours, tl.unfold(t, mode % 3))
  np.testing.assert_array_equal(ours, _unfold_loop(t, mode % 3))
  back = ml.fold(ours, mode, t.shape)
  np.testing.assert_array_equal(back, t)
  np.testing.assert_array_equal(back, tl.fold(np.asarray(ours), mode % 3,
                                              t.shape))


def test_fold_unfold_errors():
  with pytest.raises(ValueError, match="mode"):
    ml.unfold(jnp.zeros((2, 3)), 2)
  with pytest.raises(ValueError, match="cannot fold"):
    ml.fold(jnp.zeros((2, 5)), 0, (2, 3))


def _mode_dot_loop(t, op, mode):
  """np.tensordot one slice at a time (independent of tensorly)."""
  t_moved = np.moveaxis(t, mode, -1)
  if op.ndim == 1:
    out = np.zeros(t_moved.shape[:-1], np.float64)
    for idx in np.ndindex(*out.shape):
      out[idx] = np.tensordot(t_moved[idx], op, axes=1)
    return out
  out = np.zeros(t_moved.shape[:-1] + (op.shape[0],), np.float64)
  for idx in np.ndindex(*t_moved.shape[:-1]):
    out[idx] = np.tensordot(op, t_moved[idx], axes=([1], [0]))
  return np.moveaxis(out, -1, mode)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_mode_dot_matrix_and_vector(mode):
  rng = _rng(1)
  t = _normal(rng, 3, 4, 5)
  mat = _normal(rng, 6, t.shape[mode])
  vec = _normal(rng, t.shape[mode])
  dot = jax.jit(ml.mode_dot, static_argnums=2)
  for op in (mat, vec):
    ours = dot(t, op, mode)
    np.testing.assert_allclose(ours, tenalg.mode_dot(t, op, mode),
                               rtol=_RTOL, atol=_ATOL)
    np.testing.assert_allclose(ours, _mode_dot_loop(t, op, mode),
                               rtol=_RTOL, atol=_ATOL)
  with pytest.raises(ValueError, match="matrix must have shape"):
    ml.mode_dot(t, _normal(rng, 2, t.shape[mode] + 1), mode)
  with pytest.raises(ValueError, match="vector of length"):
    ml.mode_dot(t, _normal(rng, t.shape[mode] + 1), mode)


def test_multi_mode_dot_matches_tensorly():
  rng = _rng(2)
  t = _normal(rng, 3, 4, 5, 2)
  ops = [_normal(rng, 2, 3), _normal(rng, 4), _normal(rng, 6, 5)]
  ours = ml.multi_mode_dot(t, ops, [0, 1, 2])
  ref = tenalg.multi_mode_dot(t, ops, modes=[0, 1, 2])
  np.testing.assert_allclose(ours, ref, rtol=_RTOL, atol=_ATOL)
  ops_t = [_normal(rng, 3, 2), None, _normal(rng, 2, 3)]
  ours_t = ml.multi_mode_dot(t, ops_t, [0, 1, 3], transpose=True)
  ref_t = tenalg.multi_mode_dot(t, [ops_t[0], ops_t[2]], modes=[0, 3],
                                transpose=True)
  np.testing.assert_allclose(ours_t, ref_t, rtol=_RTOL, atol=_ATOL)


# ----------------------------------------------------------------------------
# Khatri-Rao and synthesis.


@pytest.mark.parametrize("sizes", [(3,), (3, 4), (2, 3, 4), (2, 3, 2, 3)])
def test_khatri_rao_matches_tensorly_and_kolda_order(sizes):
  rng = _rng(3)
  n = 5
  zs = [_normal(rng, n, k) for k in sizes]
  ours = jax.jit(ml.khatri_rao)(zs)
  assert ours.shape == (n, int(np.prod(sizes)))
  if len(sizes) > 1:
    ref = tenalg.khatri_rao([z.T for z in zs]).T
  else:
    ref = zs[0]
  np.testing.assert_allclose(ours, ref, rtol=_RTOL, atol=_ATOL)
  # Kolda ordering: first factor's index slowest.
  for b in range(n):
    loop = np.array([np.prod([zs[m][b, idx[m]] for m in range(len(sizes))])
                     for idx in itertools.product(*[range(k) for k in sizes])])
    np.testing.assert_allclose(ours[b], loop, rtol=_RTOL, atol=_ATOL)


def test_khatri_rao_batch_broadcast():
  rng = _rng(4)
  a, b = _normal(rng, 2, 1, 3), _normal(rng, 4, 5)
  ours = ml.khatri_rao([a, b])
  assert ours.shape == (2, 4, 15)
  np.testing.assert_allclose(ours[1, 2], np.kron(a[1, 0], b[2]), atol=1e-6)
  mapped = jax.vmap(lambda x: ml.khatri_rao([x, b]))(a[:, 0])
  np.testing.assert_allclose(mapped, ours, atol=1e-6)


def _synth_loop(core, zs):
  """sum over all latent indices of core[:, i1, ..., iM] * prod z_m[i_m]."""
  out = np.zeros((zs[0].shape[0], core.shape[0]), np.float64)
  for b in range(zs[0].shape[0]):
    for idx in itertools.product(*[range(s) for s in core.shape[1:]]):
      w = np.prod([zs[m][b, i] for m, i in enumerate(idx)])
      out[b] += w * core[(slice(None),) + idx]
  return out


_METHODS = ["auto", "khatri_rao", "sequential", "einsum"]


@pytest.mark.parametrize("method", _METHODS)
@pytest.mark.parametrize("shape", [(7, 3), (7, 3, 4), (2, 3, 4, 5),
                                   (6, 2, 3, 2, 2)])
def test_synthesize_matches_loop_and_tensorly(method, shape):
  rng = _rng(5)
  n = 4
  core = _normal(rng, *shape)
  zs = [_normal(rng, n, k) for k in shape[1:]]
  ours = jax.jit(ml.synthesize, static_argnames="method")(
      core, zs, method=method)
  np.testing.assert_allclose(ours, _synth_loop(core, zs), rtol=1e-4,
                             atol=1e-4)
  kr = tenalg.khatri_rao([z.T for z in zs]) if len(zs) > 1 else zs[0].T
  ref = (tl.unfold(core, 0) @ kr).T
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
  # Same as tensorly's chain of mode-n vector products, per sample.
  np.testing.assert_allclose(
      ours[0], tenalg.multi_mode_dot(core, [z[0] for z in zs],
                                     modes=range(1, len(shape))),
      rtol=1e-4, atol=1e-4)
  proj = jax.jit(ml.project, static_argnames="method")(
      tl.unfold(core, 0), zs, method=method)
  np.testing.assert_allclose(proj, ours, rtol=1e-5, atol=1e-5)


def test_synthesize_batch_dims_vmap_and_errors():
  rng = _rng(6)
  core = _normal(rng, 5, 3, 4)
  z1, z2 = _normal(rng, 2, 3, 3), _normal(rng, 3, 4)  # z2 broadcasts
  ours = ml.synthesize(core, [z1, z2])
  assert ours.shape == (2, 3, 5)
  mapped = jax.vmap(lambda a: ml.synthesize(core, [a, z2]))(z1)
  np.testing.assert_allclose(ours, mapped, rtol=1e-5, atol=1e-5)
  single = ml.synthesize(core, [z1[0, 0], z2[0]])
  assert single.shape == (5,)
  np.testing.assert_allclose(single, ours[0, 0], rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="needs 2 factors"):
    ml.synthesize(core, [z1])
  with pytest.raises(ValueError, match="does not match"):
    ml.synthesize(core, [z2, z1])
  with pytest.raises(ValueError, match="unknown method"):
    ml.synthesize(core, [z1, z2], method="magic")
  with pytest.raises(ValueError, match="unfolded core"):
    ml.project(jnp.zeros((5, 11)), [z1, z2])


def test_auto_method_choice():
  # Small output: contract without forming the Khatri-Rao product.
  assert ml._choose_method(4, [9, 15, 80]) == "sequential"
  assert ml._choose_method(3 * 64 * 64, [9, 15, 80]) == "khatri_rao"


def test_constant_illumination_eq5():
  rng = _rng(7)
  k, kl, ke, ki, n = 6, 3, 4, 5, 3
  q = _normal(rng, k, kl, ke, ki)
  z_exp, z_id = _normal(rng, n, ke), _normal(rng, n, ki)
  ours = ml.synthesize_constant_mode(q, [z_exp, z_id], mode=1)
  ones = np.ones((kl, n), np.float32) / kl
  ref = (tl.unfold(q, 0) @ tenalg.khatri_rao([ones, z_exp.T, z_id.T])).T
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
  # Holding the last mode constant instead.
  ours_last = ml.synthesize_constant_mode(
      q, [_normal(rng, n, kl), z_exp], mode=3)
  assert ours_last.shape == (n, k)
  with pytest.raises(ValueError, match="latent mode"):
    ml.synthesize_constant_mode(q, [z_exp, z_id], mode=0)


# ----------------------------------------------------------------------------
# Paper 000 eq. (15)/(25): analytic gradient vs jax.grad.


def _khatri_rao_cols(mats):
  """Column-wise Khatri-Rao of [k_i, n] matrices, Kolda ordering."""
  out = mats[0]
  for m in mats[1:]:
    out = np.einsum("in,jn->ijn", out, m).reshape(-1, m.shape[1])
  return out


def _vec(m):
  return m.reshape(-1, order="F")  # column stacking


def _eq16_matrix(b1, zs_cols, i):
  """A of eq. (16)/(25), built from the identities of appendix B.

  vec(B_(1) Z) = (I ⊗ B_(1)) vec(Z);
  vec(Z_L ⊙ Z_R) = ((I ⊙ Z_L) ⊗ I) vec(Z_R);
  vec(Z_i ⊙ Z_R) = (I ⊙ (Z_R (I ⊗ 1^T))) vec(Z_i).
  """
  n = zs_cols[0].shape[1]
  k_i = zs_cols[i].shape[0]
  eye_n = np.eye(n)
  a = np.kron(eye_n, b1)
  right = zs_cols[i + 1:]
  left = zs_cols[:i]
  p_right = int(np.prod([z.shape[0] for z in right])) if right else 1
  if left:
    z_left = _khatri_rao_cols(left)
    a = a @ np.kron(_khatri_rao_cols([eye_n, z_left]),
                    np.eye(k_i * p_right))
  if right:
    z_right = _khatri_rao_cols(right)
    spread = z_right @ np.kron(eye_n, np.ones((1, k_i)))
    a = a @ _khatri_rao_cols([np.eye(n * k_i), spread])
  return a


@pytest.mark.parametrize("sizes", [(3, 4), (2, 3, 4)])
@pytest.mark.parametrize("method", ["khatri_rao", "sequential", "einsum"])
def test_eq25_gradient_matches_jax_grad(sizes, method):
  rng = np.random.default_rng(8)
  k, n = 5, 3
  core = rng.normal(size=(k,) + sizes)
  b1 = tl.unfold(core, 0)
  zs_cols = [rng.normal(size=(s, n)) for s in sizes]
  x = rng.normal(size=(k, n))

  def loss(zs_rows):
    pred = ml.synthesize(jnp.asarray(core, jnp.float32), zs_rows,
                         method=method)  # [n, k]
    return jnp.sum((jnp.asarray(x.T, jnp.float32) - pred) ** 2)

  zs_rows = [jnp.asarray(z.T, jnp.float32) for z in zs_cols]
  grads = jax.jit(jax.grad(loss))(zs_rows)
  for i in range(len(sizes)):
    a = _eq16_matrix(b1, zs_cols, i)
    z_hat = _vec(zs_cols[i])
    x_hat = _vec(x)
    # Eq. (16) reproduces the loss of eq. (15).
    np.testing.assert_allclose(np.sum((x_hat - a @ z_hat) ** 2),
                               loss(zs_rows), rtol=1e-4)
    grad_vec = 2 * a.T @ (a @ z_hat - x_hat)  # eq. (25)
    grad_mat = grad_vec.reshape(zs_cols[i].shape, order="F")
    np.testing.assert_allclose(grads[i], grad_mat.T, rtol=1e-4, atol=1e-4)


def test_synthesize_gradient_finite_differences():
  rng = _rng(9)
  core = _normal(rng, 4, 2, 3)
  zs = [_normal(rng, 2, 2), _normal(rng, 2, 3)]
  w = _normal(rng, 2, 4)

  def f(c, a, b):
    return jnp.sum(w * ml.synthesize(c, [a, b])) + jnp.sum(
        ml.synthesize(c, [a, b]) ** 2)

  grads = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(core, *zs)
  args = [np.asarray(core, np.float64)] + [np.asarray(z, np.float64)
                                           for z in zs]

  def f_np(c, a, b):
    pred = np.einsum("kij,ni,nj->nk", c, a, b)
    return np.sum(w * pred) + np.sum(pred ** 2)

  eps = 1e-6
  for j, g in enumerate(grads):
    num = np.zeros_like(args[j])
    for idx in np.ndindex(*args[j].shape):
      plus = [a.copy() for a in args]
      minus = [a.copy() for a in args]
      plus[j][idx] += eps
      minus[j][idx] -= eps
      num[idx] = (f_np(*plus) - f_np(*minus)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------
# Rotation of features (§3.4).


def test_rotate_features_reshape_convention():
  rng = _rng(10)
  feats = _normal(rng, 2, 12)
  rot = np.linalg.qr(rng.normal(size=(2, 3, 3)))[0].astype(np.float32)
  ours = jax.jit(ml.rotate_features)(feats, rot)
  ref = np.stack([(rot[b] @ feats[b].reshape(3, 4)).ravel()
                  for b in range(2)])
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
  # Column c of the 3 x k/3 matrix is (f[c], f[k/3 + c], f[2k/3 + c]).
  np.testing.assert_allclose(
      ours[0, [1, 5, 9]], rot[0] @ feats[0, [1, 5, 9]], atol=1e-5)
  # Orthogonal R keeps the norm.
  np.testing.assert_allclose(np.linalg.norm(ours, axis=-1),
                             np.linalg.norm(feats, axis=-1), rtol=1e-5)
  np.testing.assert_allclose(jax.vmap(ml.rotate_features)(feats, rot), ours,
                             rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match="divisible by 3"):
    ml.rotate_features(jnp.zeros((2, 10)), rot)


def test_latent_to_rotation_and_rotation_of_synthesis():
  rng = _rng(11)
  z_p = _normal(rng, 4, 9)
  rot = jax.jit(ml.latent_to_rotation)(z_p)
  np.testing.assert_allclose(np.swapaxes(rot, -1, -2) @ rot,
                             np.broadcast_to(np.eye(3), (4, 3, 3)),
                             atol=1e-5)
  np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
  z_exp, z_id = _normal(rng, 4, 3), _normal(rng, 4, 5)
  feats = ml.khatri_rao([z_exp, z_id])  # 2-way synthesis, k = 15

  def f(zp):
    return jnp.sum(ml.rotate_features(feats, ml.latent_to_rotation(zp)))

  g = jax.jit(jax.grad(f))(z_p)
  assert np.all(np.isfinite(g))
  with pytest.raises(ValueError, match=r"\[..., 9\]"):
    ml.latent_to_rotation(jnp.zeros((4, 8)))


# ----------------------------------------------------------------------------
# HOSVD / Tucker.

_hosvd = jax.jit(ml.hosvd, static_argnums=1)
_tucker = jax.jit(ml.tucker, static_argnums=1,
                  static_argnames="num_iterations")
_tucker_to_tensor = jax.jit(ml.tucker_to_tensor)


def test_hosvd_full_rank_is_exact_and_matches_numpy_subspaces():
  rng = _rng(12)
  t = _normal(rng, 6, 4, 5)
  core, factors = _hosvd(t, (6, 4, 5))
  np.testing.assert_allclose(_tucker_to_tensor(core, factors), t,
                             rtol=1e-4, atol=1e-4)
  core_r, factors_r = _hosvd(t, (3, 2, 3))
  for m, f in enumerate(factors_r):
    u = np.linalg.svd(tl.unfold(t.astype(np.float64), m))[0][:, :f.shape[1]]
    np.testing.assert_allclose(f @ f.T, u @ u.T, atol=1e-4)
    np.testing.assert_allclose(f.T @ f, np.eye(f.shape[1]), atol=1e-5)
  ref_core = tenalg.multi_mode_dot(t, [np.asarray(f) for f in factors_r],
                                   transpose=True)
  np.testing.assert_allclose(core_r, ref_core, atol=1e-4)


def test_tucker_hooi_improves_on_hosvd_and_matches_tensorly():
  rng = _rng(13)
  t = _normal(rng, 8, 6, 7)
  ranks = (3, 2, 4)
  err = lambda c, f: np.linalg.norm(_tucker_to_tensor(c, f) - t)
  e_hosvd = err(*_hosvd(t, ranks))
  core, factors = _tucker(t, ranks, num_iterations=20)
  e_hooi = err(core, factors)
  assert e_hooi <= e_hosvd + 1e-4
  tl_core, tl_factors = tl_tucker(t.astype(np.float64), rank=list(ranks),
                                  n_iter_max=100, tol=1e-10)
  e_tl = np.linalg.norm(tl.tucker_to_tensor((tl_core, tl_factors)) - t)
  np.testing.assert_allclose(e_hooi, e_tl, rtol=1e-3)


def test_core_init_from_data_tensor():
  # D[:, e, i] = B x_2 u_exp[e] x_3 u_id[i] for a rank-(., 3, 4) tensor.
  rng = _rng(14)
  k, n_exp, n_id = 10, 5, 6
  gen_core = _normal(rng, k, 3, 4)
  data = tenalg.multi_mode_dot(gen_core, [_normal(rng, n_exp, 3),
                                          _normal(rng, n_id, 4)],
                               modes=[1, 2])
  b, factors = _tucker(data, (None, 3, 4), num_iterations=2)
  assert factors[0] is None and b.shape == (k, 3, 4)
  u_exp, u_id = factors[1], factors[2]
  e_idx, i_idx = np.meshgrid(np.arange(n_exp), np.arange(n_id),
                             indexing="ij")
  pred = jax.jit(ml.synthesize)(b, [u_exp[e_idx], u_id[i_idx]])
  assert pred.shape == (n_exp, n_id, k)
  np.testing.assert_allclose(np.moveaxis(pred, -1, 0), data, rtol=1e-3,
                             atol=1e-3)
  with pytest.raises(ValueError, match="one rank per mode"):
    ml.hosvd(data, [3, 4])
  with pytest.raises(ValueError, match="rank 9"):
    ml.hosvd(data, [None, 9, 4])
