"""``medgate bench ingest``: MedGate against Orthanc on the same machine, same data."""
