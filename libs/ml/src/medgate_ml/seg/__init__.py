"""Semi-supervised volumetric lesion segmentation: BARL and the baselines it is measured against.

- :mod:`.network`: the two-branch encoder-decoder with deep supervision at four scales.
- :mod:`.data`: synthetic CT volumes with fragmented lesions, patches and weak/strong views.
- :mod:`.losses`: supervision, Dual-Path Regularization, Progressively Cognitive Bias
  Correction, region-level and lesion-instance alignment.
- :mod:`.methods`: one training step per method (supervised, Mean Teacher, CPS, BARL).
- :mod:`.metrics`: Dice, Jaccard, HD95, ASD (MONAI) and lesion-wise detection F1.
- :mod:`.train`: the loop, sliding-window evaluation and ONNX export.
"""
