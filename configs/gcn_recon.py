r"""Paper 003: semi-supervised 3D reconstruction with GCN decoders (stage 1).

  # SynthFace, unseen subjects (CPU):
  python launch/train.py --config=configs/gcn_recon.py \
      --workdir=runs/gcn_recon
  # Seconds on a CPU (tests):
  python launch/train.py --config=configs/gcn_recon.py:runlocal \
      --workdir=/tmp/gcn_recon

Variants: size=quick|full, runlocal. Stage 2 (the CNN+bridge albedo
decoder and the patch-GAN) is not implemented yet.
"""

import ml_collections

from disent_jax.train import config_utils


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; `arg` selects variants (see the module docstring)."""
  v = config_utils.parse_variant(arg, size="quick", runlocal=False)
  if v.size not in ("quick", "full"):
    raise ValueError(f"size={v.size!r}: expected quick or full")
  c = config_utils.harness_config("gcn_recon", batch_size=32,
                                  total_steps=4000)
  c.progress_metrics = ("loss", "terms/recon", "terms/landmarks")
  # P x K batches: batch_size images of batch_size / data_k subjects.
  c.data_k = 2

  c.data = ml_collections.ConfigDict()
  c.data.resolution = "1k"
  c.data.size = 64
  c.data.num_subjects = 120
  c.data.num_test_subjects = 20
  c.data.images_per_subject = 10
  c.data.labelled_fraction = 0.2  # Per subject (spec §6.1).
  c.data.occluder_prob = 0.3
  c.data.fit_noise = 0.1
  c.data.seed = 0

  # The MICC-style protocol (micc.py) at the end of training.
  c.micc = ml_collections.ConfigDict()
  c.micc.num_subjects = 10
  c.micc.scan_resolution = "2.5k"
  c.micc.single_view = True

  c.model = ml_collections.ConfigDict()
  # ResNet-18-style and narrow on a CPU (spec §6.2); ResNet-50 in full.
  c.model.stage_widths = (16, 32, 64, 128)
  c.model.stage_blocks = (2, 2, 2, 2)
  c.model.bottleneck = False
  c.model.stem_width = 16
  c.model.branch_hidden = 256
  c.model.factors = (2, 2, 2, 2, 2)  # 1k -> 31 vertices (spec §6.2).
  c.model.decoder_filters = (256, 128, 64, 32, 16)
  c.model.disc_filters = (16, 32, 64, 128, 256)
  c.model.cheb_order = 6
  c.model.shape_scale = 10.0

  c.loss = ml_collections.ConfigDict()  # Spec §6.6's starting weights.
  c.loss.recon = 1.0
  c.loss.landmarks = 5.0
  c.loss.shape = 0.1
  c.loss.pair = 0.1
  c.loss.smooth = 0.5
  c.loss.symmetry = 0.5
  c.loss.softmax = 0.05
  c.loss.center = 0.005
  c.loss.adversarial = 1e-3

  c.wgan = ml_collections.ConfigDict()
  c.wgan.k = 2.0
  c.wgan.p = 6.0

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-4  # Adam (§4).
  c.optim.disc_learning_rate = 5e-5  # RMSprop (§4).
  c.optim.center_alpha = 0.5

  if v.size == "full":
    c.data.resolution = "2.5k"
    c.data.size = 128
    c.data.num_subjects = 400
    c.data.images_per_subject = 20
    c.micc.num_subjects = 20
    c.micc.scan_resolution = "5k"
    c.model.stage_widths = (64, 128, 256, 512)
    c.model.stage_blocks = (3, 4, 6, 3)
    c.model.bottleneck = True
    c.model.stem_width = 64
    c.model.branch_hidden = 512
    c.total_steps = 20000

  if v.runlocal:
    c.batch_size = 8
    c.total_steps = 4
    c.log_every_steps = 2
    c.checkpoint_every_steps = 2
    c.data.num_subjects = 4
    c.data.num_test_subjects = 2
    c.data.images_per_subject = 4
    c.micc.num_subjects = 2
    c.micc.single_view = False
    c.model.stage_widths = (8, 16)
    c.model.stage_blocks = (1, 1)
    c.model.stem_width = 8
    c.model.branch_hidden = 16
    c.model.decoder_filters = (16, 16, 8, 8, 8)
    c.model.disc_filters = (8, 8, 8, 8, 8)
    c.model.cheb_order = 3
  return c
