"""Implementations of ports.Backend: embedded (ledger in-process); http comes with the server."""
