"""Training of the quality network (torch lives here only; serving reads the ONNX file)."""
