"""What every MedGate HTTP service shares: problem+json errors, multipart uploads of DICOM
files with size limits, per-request metrics and request ids, bounded compute threads and the
operations routes (``/healthz``, ``/readyz``, ``/metrics``).

One copy here instead of one per service, so that a fix (a limit, a header, an error code)
reaches every API at once. FastAPI lives here, never in a service's ``core/``.
"""
