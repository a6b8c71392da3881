"""benchmarks/pointnet_id_vae_released.py: loading and driving the peer.

The peer is a checkout of the paper's released code, given by the
DISENT_JAX_PEER_REPO environment variable (skipped without it).
"""

import os
import pathlib
import sys
import types

import numpy as np
import pytest

# `benchmarks` is a top-level folder of the repository, not an installed
# package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import pointnet_id_vae_released as released  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_a_wrong_peer_repo_names_the_path_and_the_missing_files(tmp_path):
  (tmp_path / "Model").mkdir()
  (tmp_path / "Model" / "vae.py").write_text("")
  with pytest.raises(FileNotFoundError) as err:
    released.import_peer(tmp_path, torch=None)
  message = str(err.value)
  assert str(tmp_path) in message
  assert "Model/discriminator.py" in message.split("missing")[1]
  assert "Model/vae.py" not in message.split("missing")[1]


@pytest.mark.skipif(not os.environ.get("DISENT_JAX_PEER_REPO"),
                    reason="DISENT_JAX_PEER_REPO (released code) not set")
def test_released_step_trains_on_a_tiny_face():
  torch = pytest.importorskip("torch")
  peer = released.import_peer(
      pathlib.Path(os.environ["DISENT_JAX_PEER_REPO"]), torch)
  rng = np.random.default_rng(0)
  # A strip of 8 triangles over 10 vertices.
  faces = np.array([[i, i + 1, i + 2] for i in range(8)])
  mean = rng.normal(size=(10, 3)).astype(np.float32)
  batch = {k: mean + 0.1 * rng.normal(size=(4, 10, 3)).astype(np.float32)
           for k in ("vertices", "same_vertices")}
  loss = types.SimpleNamespace(recon=1.0, kl_id=1e-3, kl_exp=1e-3,
                               laplacian=1e-2, adversarial=1e-3,
                               neutral_code=1e-2)
  optim = types.SimpleNamespace(learning_rate=1e-3, weight_decay=0.0,
                                disc_learning_rate=1e-3)
  torch.manual_seed(0)
  step = released.peer_step(torch, peer, batch=batch, mean_face=mean,
                            faces=faces, loss=loss, optim=optim,
                            latent=(2, 2), id_dis=True)
  first = step()
  for _ in range(30):
    last = step()
  assert np.all(np.isfinite(last.numpy()))
  assert float(last[0]) < float(first[0])  # The VAE's loss falls.
