"""Conversation latency and throughput: Herald embedded, Herald scale-out and plain Rasa."""
