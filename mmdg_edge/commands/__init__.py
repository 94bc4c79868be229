"""The `mmdg-edge` commands, one module per group, loaded on first use by ``mmdg_edge.cli``."""
