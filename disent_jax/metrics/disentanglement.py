"""Disentanglement metrics: DS (paper 001 eq. 9), W-direction consistency
(paper 001 §5.1, Table 2), MIG (Chen et al. 2018) and DCI (Eastwood and
Williams 2018), computed against known factors (e.g. SynthFace's).

Factors are passed as dicts name -> [N, d] arrays (d may differ per factor).
A generator and a factor re-estimator are plain callables, so the drivers
work with any method (a GAN and a 3D reconstruction network in paper 001;
SynthFace's renderer and its exact parameters in tests).
"""

import functools
from typing import Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

_HI = jax.lax.Precision.HIGHEST

Factors = Mapping[str, jax.Array]


# ---------------------------------------------------------------------------
# DS (paper 001 eq. 9)
# ---------------------------------------------------------------------------


def group_variance(estimates: jax.Array,
                   reference_variance: Optional[jax.Array] = None
                   ) -> jax.Array:
  """Mean within-group variance of re-estimated values.

  Args:
    estimates: [G, K, d] estimates of one factor for G groups of K samples.
    reference_variance: optional [d] (or scalar) variance used to normalise
      each dimension (paper 001 divides by the variance on FFHQ).

  Returns:
    Scalar: the variance over K, averaged over groups and dimensions.
  """
  estimates = jnp.asarray(estimates)
  if estimates.ndim != 3:
    raise ValueError(f"estimates must be [G, K, d], got {estimates.shape}.")
  var = jnp.var(estimates, axis=1)  # [G, d]
  if reference_variance is not None:
    ref = jnp.asarray(reference_variance, var.dtype)
    var = var / jnp.maximum(ref, 1e-12)
  return jnp.mean(var)


def ds_from_estimates(estimates: Factors, *, varied: str,
                      reference_variance: Optional[Factors] = None,
                      eps: float = 1e-6) -> jax.Array:
  """DS_{u_i} = prod_{j != i} sigma_{u_i} / sigma_{u_j} (paper 001 eq. 9).

  Args:
    estimates: name -> [G, K, d] re-estimated factors, where within each
      group only factor `varied` was changed.
    varied: the name of u_i.
    reference_variance: optional name -> [d] normalising variances.
    eps: floor on the normalised sigma_{u_j}, so that an exactly separable
      generator gives a large finite score instead of a division by zero.

  Returns:
    Scalar DS.
  """
  if varied not in estimates:
    raise ValueError(f"{varied!r} is not among {sorted(estimates)}.")
  ref = reference_variance or {}
  sig = {k: group_variance(v, ref.get(k)) for k, v in estimates.items()}
  ds = jnp.asarray(1.0)
  for name, s in sig.items():
    if name != varied:
      ds = ds * sig[varied] / jnp.maximum(s, eps)
  return ds


@functools.partial(jax.jit, static_argnums=(1,))
def _ds_jit(estimates, varied, reference_variance, eps):
  return ds_from_estimates(estimates, varied=varied,
                           reference_variance=reference_variance, eps=eps)


def _tree_index(tree, idx):
  return {k: v[idx] for k, v in tree.items()}


def _map_batched(fn, inputs: Factors, batch_size: int):
  n = next(iter(inputs.values())).shape[0]
  outs = [fn(_tree_index(inputs, slice(i, i + batch_size)))
          for i in range(0, n, batch_size)]
  if isinstance(outs[0], Mapping):
    return {k: jnp.concatenate([o[k] for o in outs]) for k in outs[0]}
  return jnp.concatenate(outs)


def disentanglement_score(
    key: jax.Array, *,
    sample_factors: Callable[[jax.Array, int], Factors],
    generate: Callable[[Factors], jax.Array],
    estimate: Callable[[jax.Array], Factors],
    num_groups: int = 1000, group_size: int = 10,
    reference_variance: Optional[Factors] = None,
    factors: Optional[Sequence[str]] = None,
    batch_size: int = 1000, eps: float = 1e-6,
    jit: bool = True) -> dict[str, float]:
  """The DS protocol of paper 001 §4.3 for every factor.

  For factor u_i: draw `num_groups` settings of the other factors; for each,
  draw `group_size` values of u_i; generate; re-estimate every factor; take
  the within-group variance of each estimate (normalised by
  `reference_variance`) and form eq. (9).

  Args:
    key: PRNG key.
    sample_factors: (key, n) -> name -> [n, d] random factor values.
    generate: factors (name -> [n, d]) -> generated outputs [n, ...].
    estimate: outputs [n, ...] -> name -> [n, d'] re-estimated factors
      (d' may differ from d, e.g. an identity embedding).
    num_groups: groups per factor (1000 in the paper).
    group_size: samples per group (10 in the paper).
    reference_variance: name -> [d'] normalising variance of each estimate
      (FFHQ in the paper). None: the variance of the estimates over
      `num_groups * group_size` fresh random samples.
    factors: the factors to score (default: all that `sample_factors`
      returns).
    batch_size: generation chunk size.
    eps: see `ds_from_estimates`.
    jit: compile `estimate(generate(.))` and `sample_factors` (with a
      static n) with `jax.jit`; set False for callables that are not
      traceable.

  Returns:
    {"DS/<name>": score} as Python floats.
  """
  n = num_groups * group_size
  pipeline = lambda f: estimate(generate(f))
  if jit:
    pipeline = jax.jit(pipeline)
    sample_factors = jax.jit(sample_factors, static_argnums=1)
  key, ref_key = jax.random.split(key)
  names = list(factors or jax.eval_shape(lambda k: sample_factors(k, 1),
                                         ref_key).keys())
  if reference_variance is None:
    ref_est = _map_batched(pipeline, sample_factors(ref_key, n), batch_size)
    reference_variance = {k: jnp.var(v, axis=0) for k, v in ref_est.items()}
  out = {}
  for i, name in enumerate(names):
    k_fixed, k_varied = jax.random.split(jax.random.fold_in(key, i))
    fixed = sample_factors(k_fixed, num_groups)
    varied = sample_factors(k_varied, n)
    combined = {k: jnp.repeat(v, group_size, axis=0)
                for k, v in fixed.items()}
    combined[name] = varied[name]
    est = _map_batched(pipeline, combined, batch_size)
    est = {k: v.reshape(num_groups, group_size, -1) for k, v in est.items()}
    out[f"DS/{name}"] = float(_ds_jit(est, name, reference_variance, eps))
  return out


# ---------------------------------------------------------------------------
# W-space direction consistency (paper 001 §5.1, Table 2)
# ---------------------------------------------------------------------------


def mean_pairwise_cosine(deltas: jax.Array) -> jax.Array:
  """Average cosine similarity between distinct direction vectors.

  Args:
    deltas: [..., M, D] direction vectors (M >= 2); zero vectors count as
      orthogonal to everything.

  Returns:
    [...] mean over the M (M - 1) ordered pairs i != j.
  """
  deltas = jnp.asarray(deltas)
  m = deltas.shape[-2]
  if m < 2:
    raise ValueError(f"need at least 2 directions, got {deltas.shape}.")
  norm = jnp.linalg.norm(deltas, axis=-1, keepdims=True)
  unit = deltas / jnp.where(norm > 0, norm, 1.0)
  gram = jnp.einsum("...id,...jd->...ij", unit, unit, precision=_HI)
  diag = jnp.trace(gram, axis1=-2, axis2=-1)
  return (jnp.sum(gram, axis=(-2, -1)) - diag) / (m * (m - 1))


def direction_consistency(
    key: jax.Array, *,
    sample_factors: Callable[[jax.Array, int], Factors],
    mapping: Callable[[Factors], jax.Array], factor: str,
    num_pairs: int = 50, num_others: int = 100,
    mode: str = "endpoints", jit: bool = True) -> dict[str, float]:
  """Consistency of the W-space direction of change of one factor.

  Property 1 ("endpoints"): for each of `num_pairs` random (a, b) values of
  the factor and `num_others` settings of the other factors, compute
  Delta w = w(u_i = a) - w(u_i = b) (paper 001 eq. 10), and the mean
  pairwise cosine over the settings. Property 2 ("offset"): a random offset
  Delta per pair, with a random start a per setting: Delta w =
  w(a + Delta) - w(a). Table 2 reports mean ± std over the pairs.

  Args:
    key: PRNG key.
    sample_factors: (key, n) -> name -> [n, d] random factor values.
    mapping: factors -> W codes [n, ...] (flattened per sample).
    factor: the varied factor u_i.
    num_pairs: number of (a, b) pairs or offsets (50 in the paper).
    num_others: settings of the other factors per pair (100 in the paper).
    mode: "endpoints" (Property 1) or "offset" (Property 2).
    jit: compile `mapping` with `jax.jit`.

  Returns:
    {"mean", "std"} of the per-pair mean cosine similarity.
  """
  if mode not in ("endpoints", "offset"):
    raise ValueError(f"mode must be 'endpoints' or 'offset', got {mode!r}.")
  k_a, k_b, k_o = jax.random.split(key, 3)
  p, m = num_pairs, num_others
  a = sample_factors(k_a, p)[factor]
  b = sample_factors(k_b, p)[factor]
  others = sample_factors(k_o, p * m)
  if mode == "endpoints":
    start = jnp.repeat(a, m, axis=0)
    end = jnp.repeat(b, m, axis=0)
  else:
    start = sample_factors(jax.random.fold_in(k_a, 1), p * m)[factor]
    end = start + jnp.repeat(b - a, m, axis=0)
  fn = jax.jit(mapping) if jit else mapping
  w1 = fn({**others, factor: start})
  w2 = fn({**others, factor: end})
  deltas = (w2 - w1).reshape(p, m, -1)
  cos = np.asarray(jax.jit(mean_pairwise_cosine)(deltas), np.float64)
  return {"mean": float(cos.mean()), "std": float(cos.std())}


# ---------------------------------------------------------------------------
# MIG (Chen et al. 2018)
# ---------------------------------------------------------------------------


def discretize(x: jax.Array, *, num_bins: int = 20) -> jax.Array:
  """Equal-width histogram bin of each column.

  Args:
    x: [N, D] values.
    num_bins: bins per column.

  Returns:
    [N, D] int32 bin indices in [0, num_bins).
  """
  x = jnp.asarray(x, jnp.float32)
  lo = jnp.min(x, axis=0)
  hi = jnp.max(x, axis=0)
  width = jnp.where(hi > lo, (hi - lo) / num_bins, 1.0)
  return jnp.clip(jnp.floor((x - lo) / width), 0, num_bins - 1).astype(
      jnp.int32)


def mutual_information(codes: jax.Array, factors: jax.Array, *,
                       num_code_bins: int, num_factor_bins: int
                       ) -> jax.Array:
  """Plug-in mutual information (nats) between discrete columns.

  Args:
    codes: [N, D] ints in [0, num_code_bins).
    factors: [N, K] ints in [0, num_factor_bins).
    num_code_bins: static.
    num_factor_bins: static.

  Returns:
    [D, K] I(code_d; factor_k).
  """
  n = codes.shape[0]
  oc = jax.nn.one_hot(codes, num_code_bins, dtype=jnp.float32)
  of = jax.nn.one_hot(factors, num_factor_bins, dtype=jnp.float32)
  joint = jnp.einsum("nda,nkb->dkab", oc, of, precision=_HI) / n
  pc = jnp.sum(joint, axis=-1, keepdims=True)
  pf = jnp.sum(joint, axis=-2, keepdims=True)
  ratio = joint / jnp.maximum(pc * pf, 1e-30)
  terms = jnp.where(joint > 0, joint * jnp.log(jnp.maximum(ratio, 1e-30)),
                    0.0)
  return jnp.sum(terms, axis=(-2, -1))


def discrete_entropy(factors: jax.Array, *, num_bins: int) -> jax.Array:
  """Entropy (nats) of each column of [N, K] ints -> [K]."""
  p = jnp.mean(jax.nn.one_hot(factors, num_bins, dtype=jnp.float32), axis=0)
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-30)), 0.0),
                  axis=-1)


def _factor_codes(factors, num_bins, discrete):
  f = np.asarray(factors)
  if f.ndim == 1:
    f = f[:, None]
  if discrete:
    cols = [np.unique(c, return_inverse=True)[1] for c in f.T]
    out = np.stack(cols, -1).astype(np.int32)
    return out, int(out.max()) + 1
  return np.asarray(discretize(f, num_bins=num_bins)), num_bins


@functools.partial(jax.jit, static_argnums=(2, 3))
def _mig_jit(z, f, num_bins, nf):
  codes = discretize(z, num_bins=num_bins)
  mi = mutual_information(codes, f, num_code_bins=num_bins,
                          num_factor_bins=nf)
  return mi, discrete_entropy(f, num_bins=nf)


def mig(latents, factors, *, num_bins: int = 20,
        discrete_factors: bool = False) -> dict:
  """Mutual information gap.

  For each factor v_k: (I(z_a; v_k) - I(z_b; v_k)) / H(v_k), where z_a and
  z_b are the latent dimensions with the largest and second-largest mutual
  information with v_k; averaged over factors with non-zero entropy.
  Latents are discretised into `num_bins` equal-width bins.

  Args:
    latents: [N, D] codes (D >= 2).
    factors: [N, K] ground-truth factors (continuous ones are discretised
      into `num_bins` bins; discrete ones are used as labels).
    num_bins: histogram bins.
    discrete_factors: treat factors as labels instead of discretising.

  Returns:
    {"MIG": mean gap, "per_factor": [K] numpy gaps, "mi": [D, K] numpy
    mutual information (nats)}.
  """
  z = np.asarray(latents, np.float32)
  if z.ndim != 2 or z.shape[1] < 2:
    raise ValueError(f"latents must be [N, D>=2], got {z.shape}.")
  f, nf = _factor_codes(factors, num_bins, discrete_factors)
  if f.shape[0] != z.shape[0]:
    raise ValueError("latents and factors need the same N.")
  mi, ent = _mig_jit(z, f, num_bins, nf)
  mi, ent = np.asarray(mi, np.float64), np.asarray(ent, np.float64)
  top = np.sort(mi, axis=0)[::-1]
  gap = (top[0] - top[1]) / np.maximum(ent, 1e-12)
  valid = ent > 1e-12
  gap = np.where(valid, gap, 0.0)
  return {"MIG": float(gap[valid].mean()) if valid.any() else 0.0,
          "per_factor": gap, "mi": np.asarray(mi)}


# ---------------------------------------------------------------------------
# DCI (Eastwood and Williams 2018), with linear (ridge) importances
# ---------------------------------------------------------------------------


def ridge_importance(latents: jax.Array, factors: jax.Array, *,
                     l2: float = 1e-3) -> tuple[jax.Array, jax.Array]:
  """Ridge regression of standardised factors on standardised latents.

  Args:
    latents: [N, D].
    factors: [N, K].
    l2: ridge weight (relative to N).

  Returns:
    (importance [D, K] = |coefficients|, coefficients [D, K]).
  """
  z = jnp.asarray(latents, jnp.float32)
  v = jnp.asarray(factors, jnp.float32)
  zs = (z - z.mean(0)) / jnp.maximum(z.std(0), 1e-12)
  vs = (v - v.mean(0)) / jnp.maximum(v.std(0), 1e-12)
  n, d = zs.shape
  gram = jnp.matmul(zs.T, zs, precision=_HI) / n + l2 * jnp.eye(d)
  coef = jnp.linalg.solve(gram, jnp.matmul(zs.T, vs, precision=_HI) / n)
  return jnp.abs(coef), coef


def dci_from_importance(importance: jax.Array) -> dict[str, jax.Array]:
  """Disentanglement and completeness from an importance matrix.

  Args:
    importance: [D, K] non-negative R_dk (latent d for factor k), D, K >= 2.

  Returns:
    {"disentanglement": scalar, "completeness": scalar,
     "per_code": [D], "per_factor": [K]}.
  """
  r = jnp.asarray(importance, jnp.float32)
  d, k = r.shape
  if d < 2 or k < 2:
    raise ValueError(f"importance must be [D>=2, K>=2], got {r.shape}.")

  def one_minus_entropy(p, base):
    h = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-30)), 0.0),
                 axis=-1)
    return 1.0 - h / jnp.log(base)

  row = jnp.sum(r, axis=1, keepdims=True)
  per_code = one_minus_entropy(r / jnp.maximum(row, 1e-30), k)
  rho = row[:, 0] / jnp.maximum(jnp.sum(r), 1e-30)
  col = jnp.sum(r, axis=0, keepdims=True)
  per_factor = one_minus_entropy((r / jnp.maximum(col, 1e-30)).T, d)
  return {"disentanglement": jnp.sum(rho * per_code),
          "completeness": jnp.mean(per_factor), "per_code": per_code,
          "per_factor": per_factor}


@jax.jit
def _dci_jit(z, v, l2):
  importance, _ = ridge_importance(z, v, l2=l2)
  return importance, dci_from_importance(importance)


def dci(latents, factors, *, l2: float = 1e-3, test_fraction: float = 0.2,
        seed: int = 0) -> dict:
  """DCI with linear importances.

  Importances are the absolute ridge-regression coefficients of each
  standardised factor on the standardised latents (the linear variant of
  Eastwood and Williams, who also used lasso); informativeness is the
  test-split R^2 of those regressions, averaged over factors.

  Args:
    latents: [N, D] codes.
    factors: [N, K] ground-truth factors (continuous or ordinal).
    l2: ridge weight.
    test_fraction: share of samples held out for informativeness.
    seed: split seed.

  Returns:
    {"disentanglement", "completeness", "informativeness"} as floats and
    "importance" [D, K] (numpy).
  """
  z = np.asarray(latents, np.float64)
  v = np.asarray(factors, np.float64)
  if v.ndim == 1:
    v = v[:, None]
  if z.ndim != 2 or z.shape[0] != v.shape[0]:
    raise ValueError(f"latents [N, D] and factors [N, K] needed, got "
                     f"{z.shape} and {v.shape}.")
  perm = np.random.default_rng(seed).permutation(z.shape[0])
  n_test = max(1, int(round(test_fraction * z.shape[0])))
  test, train = perm[:n_test], perm[n_test:]
  importance, scores = _dci_jit(z[train], v[train], l2)
  # Informativeness: fit on train (with intercept), R^2 on test.
  zt = np.c_[z[train], np.ones(len(train))]
  reg = l2 * len(train) * np.diag(np.r_[np.var(z[train], 0), 0.0])
  w = np.linalg.solve(zt.T @ zt + reg, zt.T @ v[train])
  pred = np.c_[z[test], np.ones(len(test))] @ w
  resid = ((v[test] - pred) ** 2).sum(0)
  total = np.maximum(((v[test] - v[test].mean(0)) ** 2).sum(0), 1e-12)
  return {"disentanglement": float(scores["disentanglement"]),
          "completeness": float(scores["completeness"]),
          "informativeness": float(np.mean(1.0 - resid / total)),
          "importance": np.asarray(importance)}
