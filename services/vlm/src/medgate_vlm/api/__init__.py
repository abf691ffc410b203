"""The reasoning service's HTTP API: thin adapters around :mod:`medgate_vlm.core`."""
