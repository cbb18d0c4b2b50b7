"""Shared fixtures: a synthetic data folder laid out like ../shared/data, and the slow marker.

The synthetic texts carry a learnable signal (class words), so tests can check that training learns.
Real data is never read by the default suite; `--run-slow` enables checks on $EMPATHY_DATA_DIR.
"""

import csv
import os
import random

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Commands run by tests compile their own XLA kernels: no cache shared between test processes
# (tests/kernels_test.py checks the persistent cache in folders of its own).
os.environ.setdefault("EMPATHY_TF_XLA_CACHE", "off")


def _two_logical_cpus():
    # Must happen before TensorFlow initialises its devices: the mirrored-strategy tests run on two
    # logical CPUs; everything else uses the default (first) device.
    import tensorflow as tf
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    except RuntimeError:
        pass


_two_logical_cpus()

FILLER = ("the a of news story people today read about this article think world they we".split())
EMOTIONS = ("sadness", "joy", "love", "anger", "fear", "surprise")
SEMEVAL_COLS = ("anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism",
                "sadness", "surprise", "trust")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run slow real-data checks")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: needs --run-slow (and EMPATHY_DATA_DIR for real data)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def sentence(rng, signal, n=8):
    words = [rng.choice(FILLER) for _ in range(n)]
    for w in signal:
        words.insert(rng.randrange(len(words) + 1), w)
    return " ".join(words)


def write_newsemp(root, n=120, seed=0):
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "newsemp"), exist_ok=True)
    with open(os.path.join(root, "newsemp", "messages.csv"), "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(["message_id", "response_id", "article_id", "empathy", "distress",
                    "empathy_bin", "distress_bin", "essay"])
        for i in range(n):
            y = i % 2
            signal = ["sorry", "heartbreaking"] if y else ["whatever", "boring"]
            score = 5.0 if y else 2.0
            w.writerow([f"R{i}_1_1", f"R{i}", str(i % 7), score, 3.0, y, i % 2,
                        sentence(rng, signal, n=rng.randint(5, 30))])


def twittemp_permalink(user, status):
    return f"https://twitter.com/{user}/status/{status}"


def write_twittemp(root, n=150, seed=0):
    """TwittEmp.csv with the released file's kinds of defects; `n` examples are read from it.

    Like the authors' file: about 3 rows in 7 have an id a spreadsheet turned into scientific
    notation (`1.28E+18`, a few distinct values) and a permalink whose status number becomes the
    id; the other rows have neither (their ids are derived from the text); and max(1, n // 50)
    extra rows repeat an earlier row's text (with another link and spacing) and are dropped on
    reading. Classes cycle 0, 1, 2 over the `n` distinct texts, each with its signal words.
    """
    rng = random.Random(seed)
    rows, seen = [], set()
    for i in range(n):
        y = i % 3
        signal = (["diagnosed", "today"], ["please", "pray", "help"], ["sending", "hugs", "love"])[y]
        text = None
        while text is None or text in seen:
            text = sentence(rng, signal, n=rng.randint(4, 12)) + " @someone http://t.co/x"
        seen.add(text)
        if i % 7 in (0, 3, 5):
            status = 1275000000000000000 + i * 301234567890123
            rows.append([y, text, f"{status:.2E}", twittemp_permalink(f"user{i}", status)])
        else:
            rows.append([y, text, "", ""])
    for _ in range(max(1, n // 50)):
        y, text, _, _ = rows[rng.randrange(n)]
        rows.append([y, "  " + text.replace(" http://t.co/x", "   https://t.co/other"), "", ""])
    os.makedirs(os.path.join(root, "twittemp"), exist_ok=True)
    with open(os.path.join(root, "twittemp", "TwittEmp.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "content", "id", "permalink"])
        w.writerows(rows)


def write_sst2(root, seed=0):
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "sst2", "glue"), exist_ok=True)
    os.makedirs(os.path.join(root, "sst2", "sentence_level"), exist_ok=True)
    def rows(n):
        return [(sentence(rng, ["wonderful"] if i % 2 else ["awful"], n=rng.randint(2, 8)), i % 2)
                for i in range(n)]
    for name, n in (("train", 80), ("dev", 30)):
        with open(os.path.join(root, "sst2", "glue", f"{name}.tsv"), "w") as f:
            f.write("sentence\tlabel\n")
            f.writelines(f"{t} \t{y}\n" for t, y in rows(n))
    with open(os.path.join(root, "sst2", "sentence_level", "stsa.binary.test"), "w") as f:
        f.writelines(f"{y} {t}\n" for t, y in rows(30))


def write_carer(root, seed=0):
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "carer_emotion"), exist_ok=True)
    for name, n in (("train", 72), ("val", 24), ("test", 24)):
        with open(os.path.join(root, "carer_emotion", f"{name}.txt"), "w") as f:
            f.write("text;label_name\n")
            for i in range(n):
                label = EMOTIONS[i % 6]
                f.write(f"{sentence(rng, ['feel', label + 'word'], n=rng.randint(3, 10))};{label}\n")


def write_semeval(root, seed=0):
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "semeval2018_ec"), exist_ok=True)
    for name, n in (("train", 40), ("dev", 16), ("test-gold", 16)):
        with open(os.path.join(root, "semeval2018_ec", f"2018-E-c-En-{name}.txt"), "w") as f:
            f.write("ID\tTweet\t" + "\t".join(SEMEVAL_COLS) + "\n")
            for i in range(n):
                flags = [int((i + j) % 4 == 0) for j in range(len(SEMEVAL_COLS))]
                f.write(f"2018-En-{name}-{i}\t{sentence(rng, ['tweet'])}\t" +
                        "\t".join(map(str, flags)) + "\n")


def write_goemotions(root, seed=0):
    """goemotions/{train,dev,test}.tsv like google-research's release: no header, lines
    `text<TAB>label ids<TAB>comment id`, 28 labels (0..27), one or two per comment."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "goemotions"), exist_ok=True)
    for name, n in (("train", 84), ("dev", 28), ("test", 28)):
        with open(os.path.join(root, "goemotions", f"{name}.tsv"), "w") as f:
            for i in range(n):
                labels = sorted({i % 28, (i * 5 + 3) % 28} if i % 3 == 0 else {i % 28})
                words = [f"emo{k}word" for k in labels] + ["[NAME]"]
                f.write(f"{sentence(rng, words, n=rng.randint(3, 10))}\t"
                        f"{','.join(map(str, labels))}\t{name[:2]}{i:05d}x\n")


def write_all(root):
    write_newsemp(root)
    write_twittemp(root)
    write_sst2(root)
    write_carer(root)
    write_semeval(root)
    write_goemotions(root)
    return root


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    return write_all(str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))
