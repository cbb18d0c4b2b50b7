"""Runs a named experiment (or group) on a dataset for one or more seeds.

    python -m experiments.run --exp=bert --dataset=newsemp --data_dir=../shared/data
    python -m experiments.run --exp=kd_sst_emonet --dataset=newsemp --seeds=0,1,2 --aux_cap=2000
    python -m experiments.run --exp=baselines --dataset=newsemp --seeds=0,1,2
    python -m experiments.run --exp=table4 --aux_cap=2000              # every row, 3 seeds, table
    python -m experiments.run --exp=table7 --seeds=0,1,2   # domain adaptation (experiments/domain_adaptation.py)
    python -m experiments.run --exp=bert --dataset=newsemp --smoke   # seconds, tiny encoder
    tensorboard --logdir runs
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF C++ start-up noise out of results

from absl import app, flags, logging

flags.DEFINE_string("exp", "bert", "Experiment or group name (see experiments/registry.py).")
flags.DEFINE_string("dataset", "newsemp", "Target task: newsemp, twittemp, twittemp_seek, "
                    "twittemp_provide, sst2, carer, semeval2018_ec, emonet or csv:PATH.")
flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"),
                    "Folder laid out like data/README.md (default: $EMPATHY_DATA_DIR, else ./data).")
flags.DEFINE_string("output_dir", "./runs", "Where run folders, caches and teachers go.")
flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder (default $TFDS_DATA_DIR or "
                    "~/tensorflow_datasets).")
flags.DEFINE_integer("seed", 0, "Seed of the split and of training.")
flags.DEFINE_list("seeds", None, "Several seeds, e.g. 0,1,2 (overrides --seed).")
flags.DEFINE_bool("smoke", False, "Shrink the run: tiny random encoder, a few dozen examples, one epoch.")
flags.DEFINE_bool("overwrite", False, "Redo finished cells (earlier folders are moved aside, not deleted).")
flags.DEFINE_multi_string("override", [], "Any config field as key=value (repeatable).")
# Common fields as flags of their own; unset flags keep the experiment's value.
for _name, _kind, _help in [
        ("encoder", "string", "minilm (embedded), a keras-hub preset name, a local folder, or tiny."),
        ("emotion_dataset", "string", "carer (default), semeval2018_ec or emonet."),
        ("epochs", "integer", "Training epochs."), ("batch_size", "integer", "Global batch size."),
        ("learning_rate", "float", "Peak learning rate."),
        ("max_seq_length", "integer", "Longest sequence, in wordpieces (batches pad to their own longest)."),
        ("aux_cap", "integer", "Max training examples per auxiliary task (0 = all)."),
        ("precision", "string", "float32, mixed_bfloat16 or mixed_float16."),
        ("strategy", "string", "default, mirrored (all local GPUs) or multi_worker (TF_CONFIG)."),
        ("xla", "string", "auto (XLA-fused optimizer update on one replica), off, optimizer or full."),
        ("dropout_impl", "string", "hash (fused hash masks, default) or keras (Keras' Philox dropout)."),
        ("gelu_impl", "string", "fused (one XLA kernel each way, default) or keras (op by op)."),
        ("bias_grad_impl", "string", "float32 (bias gradients summed in float32, default) or keras "
         "(TensorFlow's BiasAddGrad, which sums bfloat16 in bfloat16 on CPU)."),
        ("selection", "string", "Best dev epoch by f1 (positive class) or macro_f1."),
        ("glove", "string", "GloVe/word2vec vectors file for the baselines (default: embedded 6B.50d)."),
        ("pooling", "string", "cls, pooler or mean."),
        ("trainable_embeddings", "bool", "GloVe baselines: fine-tune the word vectors (default: static).")]:
    getattr(flags, f"DEFINE_{_kind}")(_name, None, _help)

FLAGS = flags.FLAGS
FIELD_FLAGS = {"encoder": "encoder", "emotion_dataset": "emotion_dataset", "epochs": "epochs",
               "batch_size": "batch_size", "learning_rate": "learning_rate",
               "max_seq_length": "max_seq_length", "aux_cap": "aux_cap", "precision": "precision",
               "strategy": "strategy", "xla": "xla", "dropout_impl": "dropout_impl",
               "gelu_impl": "gelu_impl", "bias_grad_impl": "bias_grad_impl", "selection": "selection", "glove": "glove_path",
               "pooling": "pooling", "trainable_embeddings": "trainable_embeddings"}


def main(argv):
    del argv
    from empathy_tf import cli, training
    try:
        sys.exit(cli.run_from_flags(FLAGS, FIELD_FLAGS))
    except training.RunInterrupted as e:  # SIGTERM/SIGINT: checkpointed, resumable
        print(f"interrupted: {e}", file=sys.stderr)
        sys.exit(130)


# Table 7 (domain adaptation) has flags of its own (--source, --target, --mlm_*): hand over whole.
DOMAIN_ADAPTATION_PREFIXES = ("table7", "source_only", "target_only", "pretrain")


def _domain_adaptation_exp(argv):
    exp = next((a.split("=", 1)[1] for a in argv if a.startswith("--exp=")), None)
    return exp is not None and exp.startswith(DOMAIN_ADAPTATION_PREFIXES)


if __name__ == "__main__":
    if _domain_adaptation_exp(sys.argv[1:]):
        os.execv(sys.executable, [sys.executable, "-m", "experiments.domain_adaptation",
                                  *sys.argv[1:]])
    app.run(main)
