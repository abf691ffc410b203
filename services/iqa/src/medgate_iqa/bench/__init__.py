"""MiniMedQ: a small offline version of MedQ-Bench for the quality gate.

Perception MCQs (yes-or-no, what, how) and reasoning items (one image, or a pair) are built
from held-out base slices and the degradation simulators, so every gold answer is what the
simulator did and measured. ``medgate iqa bench`` answers them with the model, a
statistics-only heuristic and chance, and scores free text with a rule judge on MedQ's four
axes (:mod:`medgate_iqa.bench.judge`).
"""
