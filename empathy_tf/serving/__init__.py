"""Using finished runs: the predictor (texts in, labels out) and export (.keras, SavedModel)."""
