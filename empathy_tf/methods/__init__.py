"""Every method behind one interface (base.py): single-task and multi-task BERT, distillation and
domain adaptation. The GloVe baselines and the scikit-learn rows live outside the library, in
baselines/, and are wired in by experiments/registry.py (`register_module`)."""

from empathy_tf.methods.base import (MODULES, Method, all_methods, get, load_tasks,  # noqa: F401
                                     register, register_module)
