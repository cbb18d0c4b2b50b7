"""The GloVe baselines of Tables 4-6: Kim CNN, LSTM, BiLSTM and ConvLSTM over GloVe vectors.

The same classifier, loop and evaluation as BERT, with a word vocabulary of the training split
(empathy_tf/data/preprocessor.py) and a GloVe encoder (baselines/glove.py) whose block is
`glove_kind`. Sequence models read one text per row, so their batches are always `pooled`.
"""

from absl import logging

from baselines import glove, word_vectors
from empathy_tf.data import preprocessor as preprocessor_lib
from empathy_tf.errors import ConfigError
from empathy_tf.methods.base import register
from empathy_tf.methods.neural import NeuralMethod


@register
class Glove(NeuralMethod):
    name = "glove"
    sections = ("data", "glove", "trainer", "numerics")

    def validate(self, config):
        super().validate(config)
        if config.trainer.layout(len(config.data.task_names())) != "pooled":
            raise ConfigError("GloVe encoders read one text per row: batching must be pooled "
                              f"(got {config.trainer.batching})")

    def check_resources(self, config):
        word_vectors.load_word_vectors(config.glove.glove or None)   # cached for build_encoder

    def make_preprocessor(self, config, datas):
        return preprocessor_lib.WordPreprocessor(
            train_texts=datas[0].train.texts, max_words=config.glove.max_words,
            tweets=datas[0].task.get_source().tweets)

    def build_encoder(self, config, preprocessor):
        options = config.glove
        vectors = word_vectors.load_word_vectors(options.glove or None)
        matrix, found = word_vectors.build_embedding_matrix(preprocessor.vocabulary, vectors,
                                                            config.seed)
        logging.info("GloVe: %d of %d vocabulary words found", found, len(preprocessor.vocabulary))
        return glove.build_glove_encoder(options.glove_kind, matrix, options.trainable_embeddings,
                                         options.hidden_units, dropout=options.glove_dropout,
                                         seed=config.seed)

    def head_options(self, config):
        # The encoder ends in its own dropout; Kim's CNN puts a max-norm on the head.
        return {"dropout": 0.0, "head_max_norm": glove.MAX_NORM.get(config.glove.glove_kind)}
