"""The baselines of Tables 4-6, outside the library: the GloVe CNN, LSTM, BiLSTM and ConvLSTM
(`glove_method.py` over the encoders of `glove.py` and the vectors of `word_vectors.py`), and
the rows that need no neural network: TF-IDF + logistic regression and all-positive
(`sklearn_rows.py`), and the writer-leak floor `same_writer` (`same_writer.py`).

They run on the library's own Task, split, run lifecycle and evaluation code, as BERT does: each
is an `empathy_tf.methods.Method`. The library never imports this package; experiments/registry.py
wires its methods in with `empathy_tf.methods.register_module`, and a module here is imported
only when one of its methods is asked for (`methods.get`).

Example:

    from empathy_tf import methods
    methods.register_module("baselines.sklearn_rows", "tfidf", "all_positive")
    methods.get("tfidf")       # imports baselines.sklearn_rows, which registers TfidfLR
"""
