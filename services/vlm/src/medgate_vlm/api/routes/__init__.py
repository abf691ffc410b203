"""Routes of the reasoning API."""
