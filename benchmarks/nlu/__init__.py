"""NLU benchmark: training and load time, intent and entity quality on the held-out split."""
