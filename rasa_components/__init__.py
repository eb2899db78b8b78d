"""Rasa components of our own, loaded by the Rasa runtime from config.yml (never imports bot/)."""
