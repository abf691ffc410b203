"""Training and evaluation of the grounded VQA model (``medgate vlm train|eval``); uses torch."""
