"""Importing this module registers every Keras class a `model.keras` export is made of.

A `.keras` file names its layers by their registered names (`empathy_tf>MultiTaskClassifier`,
the BERT encoder and its kernels); Keras can rebuild them only once their classes are registered,
which importing their modules does. A GloVe export's encoder lives outside the library: `import
baselines.glove` as well.

Example:

    import keras
    import empathy_tf.models.saving  # noqa: F401  (registers the classes)
    model = keras.saving.load_model("exported/bert/model.keras")   # token ids in, logits out
"""

from empathy_tf.models import bert, classifier  # noqa: F401 pylint: disable=unused-import
