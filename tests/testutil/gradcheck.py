"""Gradients against central finite differences, along random directions."""

import jax
import jax.numpy as jnp
import numpy as np


def check_gradient(fn, *args, argnum: int = 0, eps: float = 1e-6,
                   rtol: float = 1e-4, atol: float = 1e-8,
                   directions: int = 4, seed: int = 0) -> None:
  """Asserts <grad fn, v> == (fn(x + eps v) - fn(x - eps v)) / (2 eps).

  `fn` returns a scalar. The check runs in float64 (inside
  `jax.enable_x64`) with every floating-point array argument cast to it,
  along `directions` random unit directions in `args[argnum]`.
  """
  with jax.enable_x64():
    args = [jnp.asarray(a, jnp.float64)
            if np.issubdtype(np.asarray(a).dtype, np.floating) else a
            for a in args]
    x = args[argnum]

    def f(value):
      call = list(args)
      call[argnum] = value
      return fn(*call)

    grad = np.asarray(jax.grad(f)(x), np.float64)
    assert np.isfinite(grad).all(), "non-finite gradient"
    rng = np.random.default_rng(seed)
    for _ in range(directions):
      v = rng.standard_normal(x.shape)
      v /= np.linalg.norm(v)
      vj = jnp.asarray(v)
      numeric = (float(f(x + eps * vj)) - float(f(x - eps * vj))) / (2 * eps)
      analytic = float(np.sum(grad * v))
      assert abs(numeric - analytic) <= atol + rtol * abs(numeric), (
          f"directional derivative {analytic} vs finite difference "
          f"{numeric}")
