"""Gu, Pears, Sun (FG 2023): 3D identity/expression disentanglement with a
PointNet VAE and an identity discriminator. See README.md here."""
