"""The small grounded VQA model (TinyV2T, after V2T-CoT): data, network, training.

- :mod:`.questions`: intents, phrasings (seen and held out), answers, out-of-scope questions.
- :mod:`.text`: the question encoder's input, frozen all-MiniLM-L6-v2 token states.
- :mod:`.data`: images, questions, gold answers and gold grounding masks from synthetic studies.
- :mod:`.model`: image encoder, question encoder, phrase grounding, pixel attention, heads.
- :mod:`.train`: the loop, torch-side evaluation (accuracy, pointing, IoU).
"""
