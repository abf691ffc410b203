"""The segmentation pipeline as small steps, free of FastAPI and Celery:

series → checked volume (:mod:`.series`) → model grid (:mod:`.resample`) → sliding-window
lesion probability through the ``ModelBackend`` (:mod:`.sliding`) → back on the source grid,
thresholded → lesions (:mod:`.lesions`) → DICOM SEG (:mod:`.dicom_seg`) and review PNGs
(:mod:`.overlays`). :mod:`.pipeline` strings them together; :mod:`.model` loads the ONNX
file with its card.
"""
