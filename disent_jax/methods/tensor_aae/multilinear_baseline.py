"""The [37]-style baseline: a multilinear decomposition without a network.

Wang, Panagakis and Zafeiriou (CVPR 2017, paper 000's ref. [37]) decompose
frontal images with the Khatri-Rao structure of eq. (2) and no pose mode:

    x_n = Q_(1) (z_l,n ⊙ z_exp,n ⊙ z_id,n),   Q: [D, k_l, k_exp, k_id],

with one latent per mode per image (spec §7.2: an auto-decoder). Here Q and
the latents are fitted by alternating ridge least squares on the
near-frontal training images, with z_l held at each image's fitted grey SH
light (the pseudo ground truth the method also trains on), so Q's light
mode is the SH basis. Then B = Q x_3 z_exp x_4 z_id holds, per pixel,
albedo x Y(n) (9 values per channel), and the normal is its first-order
band mapped back through Y's linear part, up to the albedo's scale
(paper 000's footnote 3). Test latents, z_l included, are solved with Q
fixed.
"""

import dataclasses
import functools

import jax.numpy as jnp
import numpy as np

from disent_jax.ops import sh_lighting


@functools.cache
def _linear_band() -> tuple[np.ndarray, float]:
  """(A [3, 3] with Y_{1..3}(n) = A n, sign of Y_0) of the SH basis."""
  eye = np.eye(3, dtype=np.float32)
  plus = np.asarray(sh_lighting.sh_basis(jnp.asarray(eye)))
  minus = np.asarray(sh_lighting.sh_basis(jnp.asarray(-eye)))
  a = ((plus - minus) / 2.0)[:, 1:4].T  # [band k, axis j]
  return a.astype(np.float64), float(np.sign(plus[0, 0]))


def _solve(gram: np.ndarray, rhs: np.ndarray, ridge: float) -> np.ndarray:
  """Batched ridge solve: (G + ridge I)^-1 r for G [..., k, k], r [..., k]."""
  k = gram.shape[-1]
  return np.linalg.solve(gram + ridge * np.eye(k), rhs[..., None])[..., 0]


@dataclasses.dataclass
class MultilinearDecomposition:
  """A fitted Q and the training latents.

  Attributes:
    core: [D, k_l, k_exp, k_id] with D = S * S * 3.
    size: the image size S.
    ridge: the latents' ridge weight.
    losses: [sweeps] training mean squared error after each sweep.
  """
  core: np.ndarray
  size: int
  ridge: float
  losses: np.ndarray

  def _design(self, fixed: dict[str, np.ndarray], free: str) -> np.ndarray:
    """[N, D, k_free]: Q contracted with the two fixed latents (one BLAS
    matmul with the last fixed mode, then a small contraction)."""
    q = self.core
    d, kl, ke, ki = q.shape
    if free == "identity":
      z = np.einsum("nl,ne->nle", fixed["light"], fixed["expression"])
      t = q.transpose(0, 3, 1, 2).reshape(d * ki, kl * ke)
      return (t @ z.reshape(len(z), -1).T).reshape(d, ki, -1).transpose(
          2, 0, 1)
    if free == "expression":
      t = (q.reshape(d * kl * ke, ki) @ fixed["identity"].T).reshape(
          d, kl, ke, -1)
      return np.einsum("dlen,nl->nde", t, fixed["light"], optimize=True)
    t = (q.reshape(d * kl * ke, ki) @ fixed["identity"].T).reshape(
        d, kl, ke, -1)
    return np.einsum("dlen,ne->ndl", t, fixed["expression"], optimize=True)

  def solve_latent(self, x: np.ndarray, latents: dict[str, np.ndarray],
                   free: str) -> np.ndarray:
    """Least-squares latent `free` [N, k] of flat images x [N, D]."""
    out = []
    for i in range(0, len(x), 64):
      part = {k: v[i:i + 64] for k, v in latents.items()}
      m = self._design(part, free)
      gram = np.einsum("ndk,ndj->nkj", m, m)
      rhs = np.einsum("ndk,nd->nk", m, x[i:i + 64])
      out.append(_solve(gram, rhs, self.ridge))
    return np.concatenate(out)

  def encode(self, images: np.ndarray, *, sweeps: int = 10
             ) -> dict[str, np.ndarray]:
    """All three latents of images [N, S, S, 3] with Q fixed."""
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    n = len(x)
    _, kl, ke, ki = self.core.shape
    lat = {"light": np.tile(_mean_light(), (n, 1))[:, :kl],
           "expression": np.full((n, ke), 1.0 / np.sqrt(ke)),
           "identity": np.full((n, ki), 1.0 / np.sqrt(ki))}
    for _ in range(sweeps):
      for free in ("identity", "expression", "light"):
        lat[free] = self.solve_latent(x, lat, free)
    return lat

  def reconstruct(self, latents: dict[str, np.ndarray]) -> np.ndarray:
    """Images [N, S, S, 3] of latents (`encode`)."""
    b = self._design({"expression": latents["expression"],
                      "identity": latents["identity"]}, "light")
    x = np.einsum("ndl,nl->nd", b, latents["light"])
    return x.reshape(len(x), self.size, self.size, 3).astype(np.float32)

  def normals(self, expression: np.ndarray, identity: np.ndarray
              ) -> np.ndarray:
    """Unit normal maps [N, S, S, 3] from B = Q x_3 z_exp x_4 z_id."""
    b = self._design({"expression": np.asarray(expression, np.float64),
                      "identity": np.asarray(identity, np.float64)},
                     "light")
    s = self.size
    b = b.reshape(len(b), s, s, 3, -1).mean(axis=3)  # [N, S, S, k_l]
    a, sign0 = _linear_band()
    n = np.einsum("jk,nhwk->nhwj", np.linalg.inv(a), b[..., 1:4])
    n = n * np.sign(b[..., :1] * sign0 + 1e-12)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    return (n / np.maximum(norm, 1e-12)).astype(np.float32)


def _mean_light() -> np.ndarray:
  """[9] the mean grey SH light (`data.sh_prior` over channels)."""
  from disent_jax.methods.tensor_aae import data  # pylint: disable=import-outside-toplevel
  return np.asarray(data.sh_prior(), np.float64).mean(0)


def grey_light(fit_sh: np.ndarray) -> np.ndarray:
  """[N, 9] channel means of fitted lights [N, 27]."""
  return np.asarray(fit_sh, np.float64).reshape(-1, 3, 9).mean(1)


def fit_multilinear(images: np.ndarray, lights: np.ndarray, *,
                    expression: int, identity: int, sweeps: int = 15,
                    ridge: float = 1.0, seed: int = 0
                    ) -> MultilinearDecomposition:
  """Alternating least squares for Q, z_exp and z_id with z_l = lights.

  Args:
    images: [N, S, S, 3] (near-frontal) training images.
    lights: [N, k_l] their lights (`grey_light` of the fitted SH).
    expression, identity: k_exp and k_id.
    sweeps: ALS sweeps (Q, then z_id, then z_exp).
    ridge: ridge weight of every solve (Q's per image). Q has more
      parameters per pixel than there are frontal images, so it must be
      strong: on the quick data the test normals are 66° at 0.1, 26° at 1
      and 28° at 10 (6 sweeps, 40 images).
    seed: the latents' random initialisation.

  Returns:
    The decomposition.
  """
  images = np.asarray(images, np.float64)
  n, s = images.shape[0], images.shape[1]
  x = images.reshape(n, -1)
  lights = np.asarray(lights, np.float64)
  kl = lights.shape[1]
  if lights.shape[0] != n:
    raise ValueError(f"lights has {lights.shape[0]} rows for {n} images")
  rng = np.random.default_rng(seed)
  lat = {"light": lights,
         "expression": rng.normal(size=(n, expression)),
         "identity": rng.normal(size=(n, identity))}
  dec = MultilinearDecomposition(
      core=np.zeros((x.shape[1], kl, expression, identity)), size=s,
      ridge=ridge, losses=np.zeros(0))
  losses = []
  for _ in range(sweeps):
    kr = np.einsum("nl,ne,ni->nlei", lat["light"], lat["expression"],
                   lat["identity"]).reshape(n, -1)
    gram = kr.T @ kr + ridge * n * np.eye(kr.shape[1])
    q = np.linalg.solve(gram, kr.T @ x).T  # [D, P]
    dec.core = q.reshape(x.shape[1], kl, expression, identity)
    for free in ("identity", "expression"):
      lat[free] = dec.solve_latent(x, lat, free)
    # Balance the two free latents' scales (their product is what counts).
    ne = np.linalg.norm(lat["expression"], axis=1, keepdims=True)
    ni = np.linalg.norm(lat["identity"], axis=1, keepdims=True)
    g = np.sqrt(np.maximum(ne * ni, 1e-12))
    lat["expression"] *= g / np.maximum(ne, 1e-12)
    lat["identity"] *= g / np.maximum(ni, 1e-12)
    kr = np.einsum("nl,ne,ni->nlei", lat["light"], lat["expression"],
                   lat["identity"]).reshape(n, -1)
    losses.append(float(np.mean(np.square(kr @ q.T - x))))
  dec.losses = np.asarray(losses)
  return dec
