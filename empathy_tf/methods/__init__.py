"""Every method behind one interface (base.py): single-task and multi-task BERT, distillation,
the GloVe baselines, the scikit-learn rows and domain adaptation."""

from empathy_tf.methods.base import Method, all_methods, get, load_tasks, register  # noqa: F401
