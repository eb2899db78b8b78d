"""Rasa-runtime input and output channels: web chat (socket.io and REST), Slack, Telegram.

This package runs inside the Rasa server on Python 3.10 and never imports `bot` or
`actions`: the seam to our own code is HTTP only.
"""
