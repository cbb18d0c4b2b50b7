"""Unsupervised domain adaptation from news to health tweets (paper §6, Table 7).

One cell fine-tunes single-task BERT on the labelled SOURCE task (`data.dataset`: its train split
trains, its dev split selects the epoch) and reports the TARGET task's test split
(`adaptation.target`, split exactly as the target task's own `bert` cell of the same seed and
fold). No target label is seen before the final evaluation. With `adaptation.corpus` set, the
encoder is first adapted by masked-LM pre-training on that corpus (mlm.py), and fine-tuning starts
from the adapted encoder.

Table 7's rows: `source_only` (no corpus), `pretrain_<corpus>`, and `target_only`, which is the
`bert` experiment on the target task (experiments/registry.py).
"""

import dataclasses
import os

from empathy_tf import io_utils
from empathy_tf.errors import ConfigError
from empathy_tf.eval import metrics as metrics_lib
from empathy_tf.data import tasks as tasks_lib
from empathy_tf.methods.base import load_tasks, register
from empathy_tf.methods.bert_methods import BertMethod
from empathy_tf.methods.neural import evaluate
from empathy_tf.methods.domain_adaptation import corpora, mlm
from empathy_tf.training import predict as predict_lib


@dataclasses.dataclass
class UdaInputs:
    """Everything a cell reads, loaded and validated before its folder is touched."""
    source: object          # TaskData
    target: object          # TaskData
    corpus_texts: list | None


@register
class DomainAdaptation(BertMethod):
    name = "uda"
    sections = (*BertMethod.sections, "adaptation")

    def validate(self, config):
        super().validate(config)
        adaptation = config.adaptation
        if adaptation.corpus:
            corpora.check_corpus_name(adaptation.corpus)
        source = tasks_lib.get_task(config.data.dataset, **config.data.csv_options())
        target = tasks_lib.get_task(adaptation.target)
        if source.name == target.name:
            raise ConfigError(f"source and target are both {source.name!r}; that is the bert "
                              "experiment (target_only)")
        if (source.num_classes, source.positive_class, source.multi_label) != (
                target.num_classes, target.positive_class, target.multi_label):
            raise ConfigError(f"source {source.name} ({source.label_names}) and target "
                              f"{target.name} ({target.label_names}) have different label sets")

    def task_names(self, config):
        return (config.data.dataset, config.adaptation.target)

    def folder_dataset(self, config):
        corpus = config.adaptation.corpus
        slug = io_utils.path_slug
        return (f"{slug(config.data.dataset)}-to-{slug(config.adaptation.target)}"
                + (f"+{corpora.corpus_slug(corpus)}" if corpus else ""))

    def data_fingerprint(self, config, ctx):
        out = super().data_fingerprint(config, ctx)
        corpus = config.adaptation.corpus
        out.update({f"corpus:{corpus}:{k}": v[:12]
                    for k, v in corpora.corpus_files(corpus, ctx.data_dir).items()})
        return out

    def load_data(self, config, ctx):
        """[source, target]; the target split exactly as its own single-task cell's."""
        source = load_tasks(config, ctx)[0]
        target_config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, dataset=config.adaptation.target))
        target = load_tasks(target_config, ctx)[0]
        corpus = config.adaptation.corpus
        texts = corpora.load_corpus(corpus, ctx.data_dir, ctx.tfds_dir) if corpus else None
        return UdaInputs(source, target, texts)

    def split_record(self, config, inputs):
        source, target = inputs.source, inputs.target
        return {
            source.task.name: {"role": "source: train, epoch selection on dev",
                               **source.split_record()},
            target.task.name: {"role": "target: test only (no label used before testing)",
                               **target.split_record()}}

    def run(self, config, inputs, run_dir, ctx, run_cell):
        source, target = inputs.source, inputs.target
        finetune = config
        mlm_info = None
        if config.adaptation.corpus:
            adapted = mlm.adapt_encoder(config, ctx, inputs.corpus_texts,
                                        vocab_texts=source.train.texts)
            finetune = dataclasses.replace(
                config, bert=dataclasses.replace(config.bert, encoder=adapted.folder))
            mlm_info = {k: v for k, v in adapted.info.items()
                        if k not in ("losses", "accuracies", "identity")}
            mlm_info.update({"folder": adapted.folder, "reused": adapted.reused})
        # Only the source task trains: its train split trains, its dev split selects the epoch.
        trained = self.train(finetune, [source], run_dir, ctx)
        source_metrics = evaluate(trained, [source])[0][source.task.name]
        target_tokens = trained.preprocessor.encode(target.test.texts)
        [probs] = predict_lib.predict_probs(trained.model, target_tokens, [0],
                                            pad_id=trained.preprocessor.pad_id)
        target_test = metrics_lib.classification_metrics(
            target.test.labels, probs, target.task.positive_class, target.task.multi_label)
        io_utils.atomic_save_npz(os.path.join(run_dir, "predictions.npz"), ids=target.test.ids,
                                 labels=target.test.labels, probs=probs)
        self.save_model(trained, [source], run_dir)
        fit = trained.fit
        return {
            "dev": source_metrics["dev"],  # what selected the epoch
            "test": target_test,           # the reported numbers (what tables read)
            "task": target.task.name,
            "target": {"task": target.task.name, "test": target_test},
            "source": {"task": source.task.name, **source_metrics},
            "best_epoch": fit.best_epoch + 1,
            "history": fit.history,
            "train": {"steps": fit.total_steps, "train_time_s": round(fit.wall_time_s, 1),
                      "examples": {source.task.name: len(source.train)}},
            "mlm": mlm_info,
            "encoder": finetune.bert.encoder,
            "base_encoder": config.bert.encoder,
            "selection": f"{config.trainer.selection} on {source.task.name} dev",
            "source_dataset": source.task.name,
        }
