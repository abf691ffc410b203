"""DICOMweb (PS3.18) under ``/dicomweb``: STOW-RS, QIDO-RS and WADO-RS."""
