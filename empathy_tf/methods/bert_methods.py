"""Single-task and multi-task BERT (paper §3.1): one shared encoder, one head per task.

Single-task BERT is the multi-task model with one task; multi-task BERT mixes the examples of the
target and auxiliary tasks within minibatches (data/batching.py) and sums their losses. Both train
on gold labels (λ = 1 in training/losses.py); distillation (distill/method.py) only changes targets.
"""

from empathy_tf.data import preprocessor as preprocessor_lib
from empathy_tf.methods.base import register
from empathy_tf.methods.neural import NeuralMethod
from empathy_tf.models import encoders


class BertMethod(NeuralMethod):
    sections = ("data", "bert", "trainer", "numerics")

    def make_preprocessor(self, config, datas):
        vocabulary = None
        if config.bert.encoder == "tiny":
            vocabulary = encoders.toy_vocabulary([t for d in datas for t in d.train.texts])
        tokenizer = encoders.load_tokenizer(config.bert.encoder, vocabulary)
        return preprocessor_lib.WordPiecePreprocessor(
            tokenizer, config.bert.max_seq_length, tweets=datas[0].task.get_source().tweets)

    def check_resources(self, config):
        if config.bert.encoder != "tiny":
            encoders.load_tokenizer(config.bert.encoder)   # a bad --encoder fails here, in seconds

    def build_encoder(self, config, preprocessor):
        bert = config.bert
        return encoders.load_encoder(
            bert.encoder, vocabulary_size=len(preprocessor.vocabulary), seed=config.seed,
            dtype=config.numerics.precision, pooling=bert.pooling, dropout=bert.dropout,
            dropout_impl=bert.dropout_impl, gelu_impl=bert.gelu_impl,
            bias_grad_impl=bert.bias_grad_impl)


@register
class SingleTask(BertMethod):
    """BERT fine-tuned on the target task alone (the paper's BERT row)."""
    name = "single"


@register
class MultiTask(BertMethod):
    """BERT fine-tuned on the target and auxiliary tasks, mixed within minibatches (MT rows)."""
    name = "mt"
    uses_aux_tasks = True
