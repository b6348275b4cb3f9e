"""Training recipes shipped as package data (``<model>[_<dataset>].toml``)."""
