"""Synthetic DICOM studies with exact ground truth (``medgate synth``).

Phantoms are drawn in millimetres, so a site's field of view and slice thickness change the
voxel grid but not the anatomy; lesions are clusters of irregular fragments with their own
contrast; every random draw comes from one seed, so the same seed writes the same bytes.
"""

from medgate_common.synth.profiles import PROFILES, ScannerProfile
from medgate_common.synth.study import StudyTruth, SynthStudy, generate_study, write_dataset

__all__ = ["PROFILES", "ScannerProfile", "StudyTruth", "SynthStudy", "generate_study", "write_dataset"]
