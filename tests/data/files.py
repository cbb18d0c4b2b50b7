"""Writers of small synthetic source files for the data tests (no real data is read)."""

import collections
import csv
import io
import os
import random

from empathy_tf.data.sources import semeval2018_ec
from tests.conftest import sentence, twittemp_permalink

NEWSEMP_HEADER = ('"message_id","response_id","article_id","empathy","distress","empathy_bin",'
                  '"distress_bin","essay"\n')
SEMEVAL_HEADER = "ID\tTweet\t" + "\t".join(semeval2018_ec.EMOTIONS) + "\n"
TWITTEMP_HEADER = "label,content,id,permalink\n"


def write(root, rel, content):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def newsemp_row(mid, essay, empathy="4.5", empathy_bin="1", distress="2.0", distress_bin="0"):
    return (f'"{mid}","R_{mid}","7","{empathy}","{distress}","{empathy_bin}","{distress_bin}",'
            f'"{essay}"\n')


def write_newsemp(root, *rows, header=NEWSEMP_HEADER):
    return write(root, "newsemp/messages.csv", header + "".join(rows))


def write_sst2(root, test_lines="0 bad film .\n1 good film .\n"):
    write(root, "sst2/glue/train.tsv", "sentence\tlabel\nhide new secretions \t0\nloves it \t1\n")
    write(root, "sst2/glue/dev.tsv", "sentence\tlabel\nit 's charming . \t1\n")
    return write(root, "sst2/sentence_level/stsa.binary.test", test_lines)


def semeval_row(tweet_id, tweet, on=()):
    return f"{tweet_id}\t{tweet}\t" + "\t".join(
        "1" if e in on else "0" for e in semeval2018_ec.EMOTIONS) + "\n"


def goemotions_row(text, labels, comment_id):
    return f"{text}\t{labels}\t{comment_id}\n"


def write_goemotions(root, train="", dev="", test=""):
    default = goemotions_row("ok [NAME]", "27", "{}1")
    return [write(root, f"goemotions/{name}.tsv", content or default.format(name))
            for name, content in (("train", train), ("dev", dev), ("test", test))]


def twittemp_csv(*rows):
    """TwittEmp.csv content from (label, content, id, permalink) tuples (CSV-quoted as needed)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return TWITTEMP_HEADER + buf.getvalue()


# The released TwittEmp.csv, as described by its defects (the file itself is not available).
RELEASED_ROWS = 3000
RELEASED_MANGLED = 1075          # rows with a scientific-notation id, all with a permalink
RELEASED_DISTINCT = 68           # distinct mangled values
RELEASED_TOP = ("1.30E+18", 510)  # the most frequent mangled value
RELEASED_DUPLICATES = 3          # texts occurring twice


def released_like_rows(seed=0):
    """Rows of a TwittEmp.csv with exactly the defects of the authors' released file.

    3,000 rows, 1,000 per class; 1,075 rows have an id in scientific notation drawn from 68
    distinct values ('1.30E+18' 510 times) and a permalink `https://twitter.com/<user>/status/<19
    digits>` whose number rounds to that id; the other 1,925 rows have neither; 3 of the latter
    repeat an earlier row's text (spacing and link changed; one per class), one of them with
    another label.

    Returns (rows, info): rows as (label, content, id, permalink) strings, and info with the
    `statuses` {row index: status}, the `duplicates` {row index: index of the first occurrence}.
    """
    rng = random.Random(seed)
    mantissas = [m for m in range(115, 200) if m != 130][:RELEASED_DISTINCT - 1]
    values = [RELEASED_TOP[0]] * RELEASED_TOP[1] + [f"{m / 100:.2f}E+18" for m in mantissas]
    while len(values) < RELEASED_MANGLED:
        values.append(f"{rng.choice(mantissas) / 100:.2f}E+18")
    rng.shuffle(values)
    mangled_rows = sorted(rng.sample(range(RELEASED_ROWS), RELEASED_MANGLED))
    value_of = dict(zip(mangled_rows, values))
    plain_rows = [i for i in range(RELEASED_ROWS) if i not in value_of]
    # Three duplicates among the rows without id or permalink, each after its (distinct) original;
    # the last one carries another label (row labels stay 1,000 per class in the file).
    # The last row of each class without id is a duplicate, so every class loses one row.
    dups = [max(i for i in plain_rows if i % 3 == c) for c in range(RELEASED_DUPLICATES)]
    wanted = [dups[0] % 3, dups[1] % 3, (dups[2] + 1) % 3]
    duplicates = {}
    for dup, label in zip(dups, wanted):
        duplicates[dup] = rng.choice([i for i in plain_rows[:1000]
                                      if i % 3 == label and i not in duplicates.values()])
    signals = (["diagnosed", "today"], ["please", "pray", "help"], ["sending", "hugs", "love"])
    rows, seen, statuses = [], set(), {}
    status_of_value = collections.Counter()
    for i in range(RELEASED_ROWS):
        label = i % 3
        if i in duplicates:
            original = rows[duplicates[i]][1]
            text = "  " + original.replace(" https://t.co/", "\nhttp://t.co/") + " "
        else:
            text = None
            while text is None or text in seen:
                text = (sentence(rng, signals[label], n=rng.randint(17, 53))
                        + f" @someone https://t.co/{rng.randrange(10 ** 6):06d}")
            seen.add(text)
        if i in value_of:
            value = value_of[i]
            base = round(float(value) / 1e16) * 10 ** 16
            status_of_value[value] += 1
            status = base - 4 * 10 ** 15 + status_of_value[value] * 7919 * 10 ** 6
            statuses[i] = str(status)
            rows.append((str(label), text, value, twittemp_permalink(f"user_{i}", status)))
        else:
            rows.append((str(label), text, "", ""))
    return rows, {"statuses": statuses, "duplicates": duplicates}


def write_released_like(root, seed=0, rows=None):
    if rows is None:
        rows, _ = released_like_rows(seed)
    return write(root, "twittemp/TwittEmp.csv", twittemp_csv(*rows))
