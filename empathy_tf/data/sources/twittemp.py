"""TwittEmp (Hosseini & Caragea, 2021): 3,000 tweets, none / seeking / providing empathy.

File: `twittemp/TwittEmp.csv`, header `label,content,id,permalink`, label 0 none, 1 seeking
empathy, 2 providing empathy. The authors published it in the paper's repository
(github.com/Mahhos/KDempathy) and later withdrew it; request it from them or use a copy you hold.

The released file (3,000 rows, 1,000 per class, sha256 512c660f...a6f7) has defects that this
reader repairs, with ONE warning that counts them, instead of refusing the file:

- its `id` column went through a spreadsheet: 1,075 ids are in scientific notation (`1.30E+18`),
  only 68 distinct values, so they identify nothing. An id that is not a plain integer is never
  used. Where a row has a permalink `https://twitter.com/<user>/status/<digits>`, its status
  number is the id (in that file exactly the 1,075 rows with a mangled id have one); a plain
  integer `id` is used when there is no permalink; otherwise the id is derived from the text,
  `tweet-<sha256[:16]>` of the normalised text, so ids do not change when rows are reordered.
- 3 texts occur twice: a row whose text (after the <URL>/<USER> preprocessing, whitespace
  collapsed) repeats an earlier row's is dropped, the first kept.

A file without these defects is read silently. Still errors: a label other than 0/1/2, a malformed
permalink, and two different texts that end up with the same id (e.g. one permalink), which name
both lines.

Tasks: `twittemp` (empathy: seeking or providing vs none, 80/10/10), `twittemp_seek` and
`twittemp_provide` (one class vs rest, 60/20/20). All three are split stratified on the three-class
label, so for a seed the seek and provide views have the same train/dev/test ids.
"""

import collections
import hashlib
import re

from absl import logging

from empathy_tf.data.sources.base import (FINE_GRAINED_SPLIT, PAPER_SPLIT, Collector, Source, Task,
                                          csv_records, parse_choice, preprocess_tweet, read_text,
                                          register, require, show)
from empathy_tf.errors import DataError

COLUMNS = ("label", "content", "id", "permalink")
LABELS = ("none", "seeking_empathy", "providing_empathy")

_PLAIN_INT = re.compile(r"[0-9]+")
# What a spreadsheet makes of a long number: 1.30E+18, 1.3e18, 2E+17.
_SCIENTIFIC = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+")
# https://twitter.com/<user>/status/<digits>; also www., mobile., x.com, i/web, / or ?query after.
_PERMALINK = re.compile(
    r"https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/(?:[A-Za-z0-9_]+|i/web)/status(?:es)?/"
    r"([0-9]{1,20})/?(?:\?\S*)?")


def normalized_text(text):
    """The text duplicates are compared on: preprocessed like a tweet, whitespace collapsed."""
    return " ".join(preprocess_tweet(text.strip()).split())


def text_id(text):
    """Stable id of a row without a usable tweet id: a hash of its normalised text."""
    digest = hashlib.sha256(normalized_text(text).encode("utf-8")).hexdigest()
    return f"tweet-{digest[:16]}"


def permalink_status(path, line, value):
    """The status number of a tweet permalink, None for an empty field, else DataError."""
    value = value.strip()
    if not value:
        return None
    match = _PERMALINK.fullmatch(value)
    if not match:
        raise DataError(f"{path}, line {line}: field 'permalink' has value {show(value)}; "
                        "expected a tweet link https://twitter.com/<user>/status/<digits> or an "
                        "empty field")
    return match.group(1)


def _n(count, singular=None, plural=None):
    """'1,075' or, with nouns, '1 row' / '1,075 rows'."""
    if singular is None:
        return f"{count:,}"
    return f"{count:,} {singular if count == 1 else plural or singular + 's'}"


@register
class TwittEmp(Source):
    name = "twittemp"
    label_names = LABELS
    files = {"all": ("twittemp/TwittEmp.csv",)}
    how_to_obtain = ("TwittEmp (Hosseini & Caragea 2021) was published in the paper's repository "
                     "github.com/Mahhos/KDempathy and later withdrawn: request TwittEmp.csv "
                     "(columns label,content,id,permalink) from the paper's authors, or use a "
                     "copy you hold")
    tweets = True
    extras = {"permalink": ("str", ())}
    tasks = (
        Task("twittemp", "twittemp", ("none", "empathy"), label_map=(0, 1, 1),
             split_fractions=PAPER_SPLIT),
        Task("twittemp_seek", "twittemp", ("rest", "seeking"), label_map=(0, 1, 0),
             split_fractions=FINE_GRAINED_SPLIT),
        Task("twittemp_provide", "twittemp", ("rest", "providing"), label_map=(0, 0, 1),
             split_fractions=FINE_GRAINED_SPLIT),
    )

    def read(self, path, split):
        del split
        out = Collector(path, tweets=True)
        rows = 0
        scientific = collections.Counter()   # mangled id value -> rows
        other_ids = 0                        # ids neither plain integers nor scientific notation
        conflicts = 0                        # plain-integer id != the permalink's status number
        kinds = collections.Counter()        # how the kept rows got their id
        first_line = {}                      # normalised text -> (line, label) of its first row
        duplicates = duplicates_relabelled = 0
        id_origin = {}                       # id -> (line, where it came from)
        for line, g in csv_records(path, ",", COLUMNS):
            rows += 1
            label = parse_choice(path, line, "label", g["label"], ("0", "1", "2"))
            text = require(path, line, "content", g["content"], "a tweet text")
            status = permalink_status(path, line, g["permalink"])
            raw_id = g["id"].strip()
            plain = bool(_PLAIN_INT.fullmatch(raw_id))
            if raw_id and not plain:
                if _SCIENTIFIC.fullmatch(raw_id):
                    scientific[raw_id] += 1
                else:
                    other_ids += 1
            elif plain and status is not None and raw_id != status:
                conflicts += 1
            key = normalized_text(text)
            if key in first_line:
                duplicates += 1
                duplicates_relabelled += first_line[key][1] != label
                continue
            first_line[key] = (line, label)
            if status is not None:
                example_id, origin = status, "field 'permalink'"
                kinds["permalink" if not plain or raw_id != status else "id"] += 1
            elif plain:
                example_id, origin = raw_id, "field 'id'"
                kinds["id"] += 1
            else:
                example_id, origin = text_id(text), "derived from the text"
                kinds["text"] += 1
            if example_id in id_origin:
                other_line, other_origin = id_origin[example_id]
                raise DataError(
                    f"{path}: duplicate example id {example_id!r} on line {other_line} "
                    f"({other_origin}) and line {line} ({origin}), rows with different texts; "
                    "expected each tweet once")
            id_origin[example_id] = (line, origin)
            out.add(line, example_id, text, label, permalink=g["permalink"].strip())
        if not out.ids:
            out.require_rows(header=bool(read_text(path).strip()))
        result = out.result(kinds=self.extras)
        defects = (sum(scientific.values()) or other_ids or conflicts or kinds["text"]
                   or duplicates)
        if defects:
            logging.warning("%s", _defects_message(
                path, rows, len(result), scientific, other_ids, conflicts, kinds, duplicates,
                duplicates_relabelled))
        return result


def _defects_message(path, rows, kept, scientific, other_ids, conflicts, kinds, duplicates,
                     duplicates_relabelled):
    parts = []
    if scientific:
        (top, top_count), = scientific.most_common(1)
        parts.append(f"{_n(sum(scientific.values()), 'row has', 'rows have')} an id in "
                     f"scientific notation ({_n(len(scientific), 'distinct value')}, {top!r} "
                     f"alone {_n(top_count, 'time')}: rounded by a spreadsheet), never used as ids")
    if other_ids:
        parts.append(f"{_n(other_ids, 'row has', 'rows have')} an id that is not a plain "
                     "integer, never used as ids")
    if conflicts:
        parts.append(f"{_n(conflicts, 'row has', 'rows have')} a plain-integer id that differs "
                     "from its permalink's status number (the permalink's was used)")
    parts.append(f"{_n(kinds['permalink'], 'id')} taken from the permalink's status number")
    if kinds["id"]:
        parts.append(f"{_n(kinds['id'], 'id')} taken from the id column")
    parts.append(f"{_n(kinds['text'], 'id')} derived from the text ('tweet-' + sha256 of the "
                 "normalised text) for rows with neither a plain-integer id nor a permalink")
    removed = f"{_n(duplicates, 'duplicate text')} removed"
    if duplicates:
        removed += (f", keeping the first row of each ({_n(duplicates_relabelled)} of the removed "
                    f"{'row' if duplicates == 1 else 'rows'} had a different label than the kept "
                    "one)")
    parts.append(removed)
    return (f"{path}: read {_n(kept, 'example')} from {_n(rows, 'row')}, repairing defects like "
            "those of the released TwittEmp file: " + "; ".join(parts) + ".")
