"""Triage: deterministic findings, and the LLM agent that explains them."""
