"""The HTTP API (FastAPI): ``create_app`` in ``mailtriage.app.api.app``."""
