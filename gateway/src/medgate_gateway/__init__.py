"""MedGate gateway: where hospitals connect.

Today it owns the main job, ``medgate demo``; PACS ingestion, DICOMweb, the database, the
workflow and the embedded mode arrive with their own issues.
"""

__version__ = "0.1.0"
