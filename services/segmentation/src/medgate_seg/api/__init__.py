"""The HTTP API of the segmentation service: ``/v1/segment`` and its results, health, metrics."""
