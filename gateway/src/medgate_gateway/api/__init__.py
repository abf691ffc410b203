"""The gateway's HTTP API (FastAPI): auth, users, studies, audit, health and metrics."""
