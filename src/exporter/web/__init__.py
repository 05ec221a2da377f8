"""The daemon's HTTP side: /metrics, the landing page and the health endpoints."""
