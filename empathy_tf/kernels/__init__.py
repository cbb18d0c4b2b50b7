"""CPU kernels as Keras layers and functions: hash dropout (its attention mask recomputed in the
backward pass), fused GELU, float32 bias gradients.

Each is a real, registered, serializable building block that `models.bert` builds the encoder
from (constructor arguments `dropout_impl`, `gelu_impl`, `bias_grad_impl`), so a saved and
reloaded model computes exactly what the trained one did, and fine-tuning and masked-LM
pre-training share one gradient path. What each buys, per CPU kind: docs/performance.md.
"""

from empathy_tf.kernels.dropout import HashDropout, make_dropout  # noqa: F401
from empathy_tf.kernels.attention import attention_context, dropout_attention  # noqa: F401
from empathy_tf.kernels.gelu import fused_gelu, activation  # noqa: F401
from empathy_tf.kernels.projection import Projection, bias_add  # noqa: F401
