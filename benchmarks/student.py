"""The KD student both benchmarks time: built from real data, with random teacher targets."""

import numpy as np


def build_student(config, ctx, rng):
    """The KD student of `config` (NewsEmp + capped SST-2 + CARER) with random teacher targets.

    Returns (datas, featurized, heads, example table, model).
    """
    from empathy_tf import runner
    from empathy_tf.data import pipeline
    datas = runner.load_tasks(config, ctx)
    featurized = runner.Featurized(config, datas, ctx)
    heads = runner.head_specs(datas)
    parts = []
    for t, data in enumerate(datas):
        gold = pipeline.one_hot_targets(data.train.labels, heads[t].num_classes, False)
        teacher = rng.dirichlet(np.ones(heads[t].num_classes), len(data.train)).astype(np.float32)
        parts.append((featurized.tokens[t]["train"], gold, teacher))
    table = pipeline.ExampleTable.build(parts, [h.num_classes for h in heads])
    return datas, featurized, heads, table, runner.build_model(config, featurized, heads)
