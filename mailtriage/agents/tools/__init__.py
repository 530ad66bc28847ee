"""The agent's tools, one module per family, all over the store's query layer."""
