"""Herald's HTTP API: the web chat page, demo shop, health; events and admin come in later."""
