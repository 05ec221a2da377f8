"""pbxware-exporter: a Prometheus exporter and monitoring daemon for Bicom PBXware."""

__version__ = "0.1.0"
