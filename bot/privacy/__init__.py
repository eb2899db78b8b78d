"""What Herald holds about a customer: export it, forget it, and purge old conversations."""
