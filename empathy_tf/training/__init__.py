"""The one training loop, its optimizer, checkpoints and tf.distribute strategies."""
