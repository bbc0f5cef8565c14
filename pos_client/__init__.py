"""pos_client: the core of the loyalty point-of-sale terminal (no UI, driver or HTTP imports)."""

__version__ = "0.1.0"
