"""The HTTP API of the image-quality service: routes, uploads, errors and request metrics."""
