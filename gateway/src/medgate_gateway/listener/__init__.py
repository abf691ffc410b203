"""The DICOM listener: C-ECHO and C-STORE SCP on pynetdicom."""

from medgate_gateway.listener.server import DicomListener

__all__ = ["DicomListener"]
