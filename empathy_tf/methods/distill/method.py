"""Multi-task knowledge distillation with teacher annealing (paper §3.2; Clark et al. 2019).

The multi-task student of `mt`, trained on `λ·gold + (1−λ)·teacher` per example, λ rising
linearly from 0 to 1 over training (annealing.py), with one single-task teacher per task
(teachers.py). With λ = 1 throughout this is exactly `mt`.
"""

import tensorflow as tf

from empathy_tf.methods.base import register
from empathy_tf.methods.bert_methods import MultiTask
from empathy_tf.methods.distill import teachers
from empathy_tf.methods.distill.annealing import TeacherAnnealing


@register
class Distill(MultiTask):
    """The paper's KD rows: the MT student with annealed teacher targets."""
    name = "kd"
    sections = (*MultiTask.sections, "distill")

    def teacher_targets(self, config, datas, ctx, run_cell):
        return teachers.teacher_predictions(config, datas, ctx, run_cell)

    def callbacks(self, config):
        lam = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="distill_lambda")
        return lam, [TeacherAnnealing(lam, config.distill.annealing,
                                      config.distill.annealing_constant)]
