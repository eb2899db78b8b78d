"""Peak resident memory of every process of each stack under conversation load."""
