"""empathy_tf: knowledge distillation for empathy detection, in Keras 3 / TensorFlow."""

__version__ = "0.2.0"
