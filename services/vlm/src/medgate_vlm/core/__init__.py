"""The reasoning service's outputs as DICOM, free of FastAPI and Celery:

draft-report statements with the evidence each rests on (:mod:`.evidence`) → a TID 1500
Comprehensive 3D SR that references the seg service's SEG segments and the source images
(:mod:`.dicom_sr`), and RGB Secondary Capture key images with lesion outlines and grounding
heatmaps burned in (:mod:`.key_images`).
"""
