"""The KD student of `kd_sst_emonet` on real data, built as the runner builds it (for benchmarks)."""

import dataclasses

import numpy as np

from empathy_tf import methods, runs
from empathy_tf.data import batching
from experiments import registry


@dataclasses.dataclass
class Student:
    raw_config: object      # the ExperimentConfig asked for (auto unresolved)
    config: object          # resolved ExperimentConfig
    method: object
    datas: list
    preprocessor: object
    tokens: list            # per task: {split: Tokens}
    table: object           # batching.ExampleTable of the training examples (random teachers)
    heads: list


def build_student(data_dir, tfds_dir=None, aux_cap=2000, precision="auto", encoder="minilm",
                  experiment="kd_sst_emonet", dataset="newsemp", seed=0, **options):
    """Tokenized tasks and the example table of an experiment's student (no model yet)."""
    raw_config = registry.get_config(experiment).replace(
        dataset=dataset, aux_cap=aux_cap, precision=precision, encoder=encoder, seed=seed,
        **options).validate()
    config = raw_config.resolved()
    method = methods.get(config.method)
    ctx = runs.RunContext(data_dir, "/tmp/empathy_tf_bench", tfds_dir)
    datas = method.load_data(config, ctx)
    preprocessor = method.make_preprocessor(config, datas)
    tokens = method.tokenize(preprocessor, datas, ctx)
    from empathy_tf.methods.neural import head_specs
    heads = head_specs(datas)
    rng = np.random.default_rng(0)
    parts = []
    for t, d in enumerate(datas):
        gold = batching.one_hot_targets(d.train.labels, heads[t].num_classes, heads[t].multi_label)
        teacher = rng.dirichlet(np.ones(heads[t].num_classes), len(d.train)).astype(np.float32)
        parts.append((tokens[t]["train"], gold, teacher))
    table = batching.ExampleTable.build(parts, [h.num_classes for h in heads])
    return Student(raw_config, config, method, datas, preprocessor, tokens, table, heads)
