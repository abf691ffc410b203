"""Receiving DICOM: validate, de-duplicate, store, index, and decide when a study is ready."""
