"""Multilinear algebra for tensor-structured latent models (paper 000, §3).

Conventions (those of tensorly, chosen so that paper 000's equations hold
with the factors in the order they are written):

* Mode-n unfolding is row-major: `unfold(T, n)[i_n, j]` with `j` the
  C-order (last index fastest) flat index of the remaining indices. Kolda &
  Bader (2009) order the columns the other way (first index fastest); the
  two differ by a column permutation.
* The Khatri-Rao product uses Kolda's ordering: for per-sample vectors,
  (z1 ⊙ z2)[i * k2 + j] = z1[i] * z2[j] (the first factor's index varies
  slowest), as `tensorly.tenalg.khatri_rao` does for columns.

With both, for a core tensor B [k, k1, ..., kM] and per-sample latent
vectors z_i [k_i],

  B x_2 z1 x_3 z2 ... x_{M+1} zM = unfold(B, 0) @ (z1 ⊙ z2 ⊙ ... ⊙ zM),

which is paper 000 eq. (1)-(4) and the "projection" of §3.5.

Layout: the paper stacks samples as columns (Z in R^{k x n}); here samples
are leading batch dimensions (a factor is [..., k_i]), as in the rest of
the codebase. Modes count from 0 (the paper's mode 1 is mode 0 here).
"""

import math
from typing import Sequence

import jax
import jax.numpy as jnp

from disent_jax.ops import camera

_HIGHEST = jax.lax.Precision.HIGHEST
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _check_mode(mode: int, ndim: int) -> int:
  if not -ndim <= mode < ndim:
    raise ValueError(f"mode {mode} out of range for a {ndim}-way tensor")
  return mode % ndim


# ----------------------------------------------------------------------------
# Unfolding and mode-n products.


def unfold(tensor: jax.Array, mode: int) -> jax.Array:
  """Mode-n unfolding (matricisation), row-major as in tensorly.

  Args:
    tensor: [I_0, ..., I_{N-1}], no batch dimensions (vmap for batches).
    mode: the mode n (negative counts from the end).

  Returns:
    [I_n, prod_{m != n} I_m] with the other indices flattened in C order.
  """
  tensor = jnp.asarray(tensor)
  mode = _check_mode(mode, tensor.ndim)
  return jnp.moveaxis(tensor, mode, 0).reshape(tensor.shape[mode], -1)


def fold(matrix: jax.Array, mode: int, shape: Sequence[int]) -> jax.Array:
  """Inverse of `unfold`: a [I_n, prod others] matrix back to `shape`.

  Args:
    matrix: [shape[mode], prod_{m != mode} shape[m]].
    mode: the mode the rows index.
    shape: full shape of the tensor.

  Returns:
    A tensor of shape `shape`.
  """
  matrix = jnp.asarray(matrix)
  shape = tuple(int(s) for s in shape)
  mode = _check_mode(mode, len(shape))
  rest = shape[:mode] + shape[mode + 1:]
  if matrix.shape != (shape[mode], math.prod(rest)):
    raise ValueError(f"cannot fold a {tuple(matrix.shape)} matrix into mode "
                     f"{mode} of shape {shape}")
  return jnp.moveaxis(matrix.reshape((shape[mode],) + rest), 0, mode)


def mode_dot(tensor: jax.Array, operand: jax.Array, mode: int) -> jax.Array:
  """Mode-n product with a matrix or a vector.

  * Matrix U [J, I_n]: (T x_n U) has shape [..., J, ...] (mode n replaced),
    with (T x_n U)[.., j, ..] = sum_i T[.., i, ..] U[j, i].
  * Vector u [I_n]: (T x_n u) drops mode n,
    (T x_n u)[...] = sum_i T[.., i, ..] u[i].

  Args:
    tensor: [I_0, ..., I_{N-1}].
    operand: [J, I_n] or [I_n].
    mode: the mode n.

  Returns:
    The contracted tensor.
  """
  tensor, operand = jnp.asarray(tensor), jnp.asarray(operand)
  mode = _check_mode(mode, tensor.ndim)
  size = tensor.shape[mode]
  if operand.ndim == 1:
    if operand.shape[0] != size:
      raise ValueError(f"vector of length {operand.shape[0]} does not match "
                       f"mode {mode} of size {size}")
    return jnp.tensordot(tensor, operand, axes=([mode], [0]),
                         precision=_HIGHEST)
  if operand.ndim != 2 or operand.shape[1] != size:
    raise ValueError(f"matrix must have shape [J, {size}] for mode {mode}, "
                     f"got {tuple(operand.shape)}")
  out = jnp.tensordot(tensor, operand, axes=([mode], [1]), precision=_HIGHEST)
  return jnp.moveaxis(out, -1, mode)


def multi_mode_dot(tensor: jax.Array,
                   operands: Sequence[jax.Array | None],
                   modes: Sequence[int] | None = None, *,
                   transpose: bool = False) -> jax.Array:
  """Successive mode-n products T x_{m1} U1 x_{m2} U2 ...

  Vector operands drop their mode; modes always refer to the axes of the
  original `tensor`.

  Args:
    tensor: [I_0, ..., I_{N-1}].
    operands: matrices [J_m, I_m] or vectors [I_m]; None entries are skipped.
    modes: the mode of each operand (default 0, 1, ...).
    transpose: multiply by U^T instead of U (matrices only), i.e. the
      operands are [I_m, J_m], as when projecting onto Tucker factors.

  Returns:
    The contracted tensor.
  """
  tensor = jnp.asarray(tensor)
  modes = list(range(len(operands))) if modes is None else list(modes)
  if len(modes) != len(operands):
    raise ValueError(f"{len(operands)} operands but {len(modes)} modes")
  modes = [_check_mode(m, tensor.ndim) for m in modes]
  # Apply from the highest mode down so vector products do not shift the
  # remaining modes.
  for m, op in sorted(zip(modes, operands), key=lambda p: -p[0]):
    if op is None:
      continue
    op = jnp.asarray(op)
    if transpose and op.ndim == 2:
      op = op.T
    tensor = mode_dot(tensor, op, m)
  return tensor


# ----------------------------------------------------------------------------
# Khatri-Rao products and n-way synthesis.


def _check_factors(factors: Sequence[jax.Array]) -> list[jax.Array]:
  factors = [jnp.asarray(f) for f in factors]
  if not factors:
    raise ValueError("need at least one factor")
  for i, f in enumerate(factors):
    if f.ndim < 1:
      raise ValueError(f"factor {i} must have shape [..., k_{i}], got a "
                       "scalar")
  return factors


def khatri_rao(factors: Sequence[jax.Array]) -> jax.Array:
  """Per-sample Khatri-Rao product z1 ⊙ ... ⊙ zM (paper 000's n-way synthesis).

  For each sample this is the Kronecker product of the factors' vectors in
  Kolda's ordering (first factor's index slowest); stacking samples as
  columns gives the column-wise Khatri-Rao product of the paper, i.e.
  `khatri_rao([z.T for z in Z]).T` equals
  `tensorly.tenalg.khatri_rao(Z)` for matrices Z_i [k_i, n]. Computed by one
  `einsum` for any number of factors.

  Args:
    factors: M arrays [..., k_i] with broadcast-compatible batch dims.

  Returns:
    [..., prod k_i].
  """
  factors = _check_factors(factors)
  letters = _LETTERS[:len(factors)]
  spec = ",".join(f"...{c}" for c in letters) + f"->...{letters}"
  out = jnp.einsum(spec, *factors, precision=_HIGHEST)
  return out.reshape(out.shape[:out.ndim - len(factors)] + (-1,))


def _flat_batch(factors: list[jax.Array]) -> tuple[tuple[int, ...],
                                                   list[jax.Array]]:
  """Broadcasts factors to one batch shape and flattens it: [n, k_i]."""
  batch = jnp.broadcast_shapes(*[f.shape[:-1] for f in factors])
  n = math.prod(batch)
  flat = [jnp.broadcast_to(f, batch + f.shape[-1:]).reshape(n, f.shape[-1])
          for f in factors]
  return batch, flat


def _choose_method(out_size: int, sizes: Sequence[int]) -> str:
  """Cheaper of materialising z1 ⊙ ... ⊙ zM or contracting one at a time.

  Both start with a dense product of the same flop count (the batch against
  the full core); they differ in the per-sample intermediate that follows:
  prod(k_i) entries for the Khatri-Rao route, out_size * prod(k_i) / k_max
  for contracting the largest factor first. The latter is smaller exactly
  when out_size < k_max.
  """
  return "sequential" if out_size < max(sizes) else "khatri_rao"


def _synthesize_sequential(core: jax.Array, flat: list[jax.Array]
                           ) -> jax.Array:
  """B x_2 z1 ... without forming z1 ⊙ ... ⊙ zM; returns [n, k]."""
  sizes = [f.shape[-1] for f in flat]
  first = max(range(len(flat)), key=lambda i: sizes[i])
  # Dense step: the core (no batch) against all samples of one factor.
  t = jnp.tensordot(core, flat[first], axes=([first + 1], [1]),
                    precision=_HIGHEST)  # [k, (other modes), n]
  rest = [i for i in range(len(flat)) if i != first]
  if not rest:
    return t.T
  letters = _LETTERS[:len(rest)]
  spec = ("z" + letters + "y," + ",".join(f"y{c}" for c in letters) + "->yz")
  return jnp.einsum(spec, t, *[flat[i] for i in rest], precision=_HIGHEST,
                    optimize="greedy")


def synthesize(core: jax.Array, factors: Sequence[jax.Array], *,
               method: str = "auto") -> jax.Array:
  """Multilinear synthesis B x_2 z1 x_3 z2 ... x_{M+1} zM for a batch.

  Equals `unfold(B, 0) @ khatri_rao(factors)` per sample (paper 000
  eq. (1)-(4), and eq. (15)'s B_(1)(Z1 ⊙ ... ⊙ ZM) with samples as rows).

  Args:
    core: [k, k1, ..., kM] core tensor (no batch dims).
    factors: M arrays [..., k_i] (broadcast-compatible batch dims).
    method: how to contract:
      "khatri_rao": form z1 ⊙ ... ⊙ zM per sample, then one matmul with
        unfold(B, 0); extra memory n * prod(k_i).
      "sequential": contract the core with the largest factor first (a dense
        matmul over the batch), then the others per sample; never forms the
        Khatri-Rao product; extra memory n * k * prod(k_i) / k_max.
      "einsum": a single `jnp.einsum` whose contraction order is found by
        opt_einsum's exhaustive search (greedy beyond 6 operands); it
        minimises flops but not memory traffic, and is usually the slowest
        of the three for large cores (see benchmarks/ops.py).
      "auto" (default): "sequential" when k < max(k_i) (small outputs), else
        "khatri_rao"; both cost the same dense flops, this keeps the smaller
        intermediate.

  Returns:
    [..., k].
  """
  core = jnp.asarray(core)
  factors = _check_factors(factors)
  if core.ndim != len(factors) + 1:
    raise ValueError(f"core with {core.ndim} modes needs {core.ndim - 1} "
                     f"factors, got {len(factors)}")
  sizes = [f.shape[-1] for f in factors]
  if tuple(core.shape[1:]) != tuple(sizes):
    raise ValueError(f"core shape {tuple(core.shape)} does not match factor "
                     f"sizes {sizes}")
  if method == "auto":
    method = _choose_method(core.shape[0], sizes)
  if method == "einsum":
    letters = _LETTERS[:len(factors)]
    spec = ("z" + letters + "," + ",".join(f"...{c}" for c in letters) +
            "->...z")
    optimize = "optimal" if len(factors) < 6 else "greedy"
    return jnp.einsum(spec, core, *factors, precision=_HIGHEST,
                      optimize=optimize)
  batch, flat = _flat_batch(factors)
  if method == "khatri_rao":
    kr = khatri_rao(flat)  # [n, P]
    # [k, P] @ [P, n]: the core is read in its stored (row-major) layout.
    out = jnp.matmul(unfold(core, 0), kr.T, precision=_HIGHEST).T
  elif method == "sequential":
    out = _synthesize_sequential(core, flat)
  else:
    raise ValueError(f"unknown method {method!r}; expected 'auto', "
                     "'khatri_rao', 'sequential' or 'einsum'")
  return out.reshape(batch + (core.shape[0],))


def project(core_unfolded: jax.Array, factors: Sequence[jax.Array], *,
            method: str = "auto") -> jax.Array:
  """Projection B_(1)(z1 ⊙ ... ⊙ zM) from the unfolded core.

  `core_unfolded` is what an unbiased dense layer stores (as its transposed
  kernel); see `synthesize` for `method` (the Khatri-Rao product is only
  formed when that is the cheaper route).

  Args:
    core_unfolded: [k, prod k_i] = unfold(B, 0).
    factors: M arrays [..., k_i].
    method: as in `synthesize`.

  Returns:
    [..., k].
  """
  core_unfolded = jnp.asarray(core_unfolded)
  factors = _check_factors(factors)
  sizes = tuple(f.shape[-1] for f in factors)
  if core_unfolded.ndim != 2 or core_unfolded.shape[1] != math.prod(sizes):
    raise ValueError(f"unfolded core must be [k, {math.prod(sizes)}] for "
                     f"factor sizes {sizes}, got "
                     f"{tuple(core_unfolded.shape)}")
  core = core_unfolded.reshape((core_unfolded.shape[0],) + sizes)
  return synthesize(core, factors, method=method)


def synthesize_constant_mode(core: jax.Array, factors: Sequence[jax.Array],
                             *, mode: int = 1, method: str = "auto"
                             ) -> jax.Array:
  """Synthesis with one mode's latent fixed to the constant (1/k_m) 1.

  Paper 000 eq. (5)/(14): normals do not depend on illumination, so
  X_N = Q_(1)((1/k_l) 1 ⊙ Z_exp ⊙ Z_id), i.e. Q x_2 (1/k_l) 1 x_3 z_exp
  x_4 z_id. Contracting with (1/k_m) 1 is the mean over that mode, which is
  taken first.

  Args:
    core: [k, k1, ..., kM].
    factors: the M - 1 latent arrays [..., k_i] of the other modes, in order.
    mode: the core axis (1..M) held constant (1 = the first latent mode, the
      illumination mode of paper 000's Q).
    method: as in `synthesize`.

  Returns:
    [..., k].
  """
  core = jnp.asarray(core)
  if not 1 <= mode < core.ndim:
    raise ValueError(f"mode must be a latent mode in 1..{core.ndim - 1}, "
                     f"got {mode}")
  return synthesize(jnp.mean(core, axis=mode), factors, method=method)


# ----------------------------------------------------------------------------
# Pose: feature rotation (§3.4).


def rotate_features(features: jax.Array, rotation: jax.Array) -> jax.Array:
  """Paper 000 §3.4 "rotation" of a synthesised feature vector.

  The feature [k] is reshaped row-major to [3, k/3] (entry (r, c) is
  feature[r * k/3 + c]), left-multiplied by R and flattened back.

  Args:
    features: [..., k] with k divisible by 3 (e.g. z_exp ⊙ z_id).
    rotation: [..., 3, 3].

  Returns:
    [..., k] rotated features.
  """
  features, rotation = jnp.asarray(features), jnp.asarray(rotation)
  k = features.shape[-1]
  if features.ndim < 1 or k % 3:
    raise ValueError(f"features must be [..., k] with k divisible by 3, got "
                     f"{tuple(features.shape)}")
  if rotation.ndim < 2 or rotation.shape[-2:] != (3, 3):
    raise ValueError(f"rotation must be [..., 3, 3], got "
                     f"{tuple(rotation.shape)}")
  mat = features.reshape(features.shape[:-1] + (3, k // 3))
  out = jnp.matmul(rotation, mat, precision=_HIGHEST)
  return out.reshape(out.shape[:-2] + (k,))


def latent_to_rotation(z_pose: jax.Array) -> jax.Array:
  """The pose latent z_p [..., 9] of §3.4 projected onto a rotation.

  z_p is read row-major as a 3x3 matrix and replaced by the nearest proper
  rotation (SVD, det = +1); see `camera.rotation_from_9d` for the gradient.

  Args:
    z_pose: [..., 9].

  Returns:
    [..., 3, 3] rotations.
  """
  z_pose = jnp.asarray(z_pose)
  if z_pose.ndim < 1 or z_pose.shape[-1] != 9:
    raise ValueError(f"z_pose must be [..., 9], got {tuple(z_pose.shape)}")
  return camera.rotation_from_9d(z_pose)


# ----------------------------------------------------------------------------
# Tucker decomposition (initialisation of core tensors from data).


def _leading_left_singular(matrix: jax.Array, rank: int) -> jax.Array:
  """[I, rank] leading left singular vectors, signs fixed deterministically.

  Each vector is flipped so that its largest-magnitude entry is positive.
  """
  u, _, _ = jnp.linalg.svd(matrix, full_matrices=False)
  u = u[:, :rank]
  pivot = jnp.take_along_axis(u, jnp.argmax(jnp.abs(u), axis=0)[None], 0)
  return u * jnp.where(pivot < 0, -1.0, 1.0)


def _check_ranks(tensor: jax.Array, ranks: Sequence[int | None]
                 ) -> list[int | None]:
  ranks = list(ranks)
  if len(ranks) != tensor.ndim:
    raise ValueError(f"need one rank per mode ({tensor.ndim}), got "
                     f"{len(ranks)}")
  for m, r in enumerate(ranks):
    if r is not None and not 1 <= r <= tensor.shape[m]:
      raise ValueError(f"rank {r} for mode {m} must be in "
                       f"1..{tensor.shape[m]}")
    if r is not None and r > math.prod(tensor.shape) // tensor.shape[m]:
      raise ValueError(f"rank {r} for mode {m} exceeds the number of columns "
                       "of its unfolding")
  return ranks


def hosvd(tensor: jax.Array, ranks: Sequence[int | None]
          ) -> tuple[jax.Array, list[jax.Array | None]]:
  """Truncated higher-order SVD: T ≈ G x_0 U_0 x_1 U_1 ... (Tucker form).

  U_m holds the leading `ranks[m]` left singular vectors of unfold(T, m);
  G = T x_0 U_0^T x_1 U_1^T ... A rank of None leaves the mode whole (no
  factor, G keeps that axis), which is how a core of paper 000 is
  initialised from a data tensor D [k, n_exp, n_id]: with ranks
  (None, k_exp, k_id), B = G is [k, k_exp, k_id] and the latents of sample
  (e, i) are the rows U_1[e], U_2[i], so D[:, e, i] ≈
  synthesize(B, [U_1[e], U_2[i]]).

  Args:
    tensor: [I_0, ..., I_{N-1}].
    ranks: one int (1..I_m) or None per mode.

  Returns:
    (core, factors): core [R_0, ..., R_{N-1}] (R_m = I_m where ranks[m] is
    None) and factors[m] [I_m, R_m] with orthonormal columns, or None.
  """
  tensor = jnp.asarray(tensor)
  ranks = _check_ranks(tensor, ranks)
  factors = [None if r is None else _leading_left_singular(unfold(tensor, m),
                                                           r)
             for m, r in enumerate(ranks)]
  return multi_mode_dot(tensor, factors, transpose=True), factors


def tucker(tensor: jax.Array, ranks: Sequence[int | None], *,
           num_iterations: int = 10
           ) -> tuple[jax.Array, list[jax.Array | None]]:
  """Tucker decomposition by HOSVD followed by HOOI sweeps.

  Each higher-order orthogonal iteration (De Lathauwer et al. 2000) sweep
  re-fits U_m to the leading left singular vectors of unfold(T x_{n != m}
  U_n^T, m); the fit never gets worse than the HOSVD's.

  Args:
    tensor: [I_0, ..., I_{N-1}].
    ranks: one int or None per mode, as in `hosvd`.
    num_iterations: HOOI sweeps after the HOSVD (0 gives `hosvd`).

  Returns:
    (core, factors) as in `hosvd`.
  """
  tensor = jnp.asarray(tensor)
  ranks = _check_ranks(tensor, ranks)
  _, factors = hosvd(tensor, ranks)
  active = [m for m, r in enumerate(ranks) if r is not None]

  def sweep(_, fs):
    fs = list(fs)
    for j, m in enumerate(active):
      others = [None if (i == m or ranks[i] is None) else
                fs[active.index(i)] for i in range(tensor.ndim)]
      partial = multi_mode_dot(tensor, others, transpose=True)
      fs[j] = _leading_left_singular(unfold(partial, m), ranks[m])
    return tuple(fs)

  if active and num_iterations > 0:
    result = jax.lax.fori_loop(0, num_iterations, sweep,
                               tuple(factors[m] for m in active))
    for j, m in enumerate(active):
      factors[m] = result[j]
  return multi_mode_dot(tensor, factors, transpose=True), factors


def tucker_to_tensor(core: jax.Array, factors: Sequence[jax.Array | None]
                     ) -> jax.Array:
  """Reconstructs G x_0 U_0 x_1 U_1 ... (None factors are identities).

  Args:
    core: [R_0, ..., R_{N-1}].
    factors: per mode, [I_m, R_m] or None.

  Returns:
    [I_0, ..., I_{N-1}].
  """
  core = jnp.asarray(core)
  if len(factors) != core.ndim:
    raise ValueError(f"need one factor per mode ({core.ndim}), got "
                     f"{len(factors)}")
  return multi_mode_dot(core, factors)


__all__ = [
    "fold", "hosvd", "khatri_rao", "latent_to_rotation", "mode_dot",
    "multi_mode_dot", "project", "rotate_features", "synthesize",
    "synthesize_constant_mode", "tucker", "tucker_to_tensor", "unfold",
]
