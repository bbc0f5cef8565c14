"""The reference loyalty server: FastAPI over pos_client.ledger, per-terminal tokens."""
