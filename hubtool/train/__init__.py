"""Stage 2b, train: a built folder's weights trained on text, reproducibly, with a training record."""
