"""The volunteer platform's web app: JSON API, pages and static files (FastAPI)."""

from __future__ import annotations

from camcensus.web.app import WebSettings, create_app, serve

__all__ = ["WebSettings", "create_app", "serve"]
