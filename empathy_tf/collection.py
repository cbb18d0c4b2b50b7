"""The TwittEmp collection filter (paper §4.2.1): keep posts with a high-empathy word AND a topic.

A post is kept when it contains, as whole words and ignoring case, at least one of a chosen set of
high-empathy words AND at least one topic keyword ("cancer" by default). The empathy words are the
top-K words by rating of the Sedoc et al. (2019) empathy lexicon (a CSV `word,rating` with a header
and quoted words), optionally restricted first to a user's word list. Lexicon entries without a
letter (numbers, punctuation) are never chosen, and topic keywords never count as empathy words
(else "cancer", itself highly rated, would satisfy both conditions). Posts are normalised the way
TwittEmp was (`source_parsing.preprocess_tweet`: links -> `<URL>`, @usernames -> `<USER>`) BEFORE
matching, so a word inside a link or a username does not count; duplicates (same text after
normalisation, ignoring case and runs of whitespace) are dropped, the first occurrence kept.

"Whole word" means not preceded or followed by a letter, digit or underscore: `cancer` matches
"Cancer!" and "#cancer" but not "cancerous"; a multi-word keyword ("breast cancer") matches the
phrase with any whitespace between its words.

Example:

    lexicon = load_lexicon("../shared/data/empathy_lexicon_sedoc2019/empathy_lexicon.txt")
    words = top_words(lexicon, k=100)
    kept, report = collect(posts, words, topics=("cancer",))
"""

import collections
import csv
import dataclasses
import math
import re

from absl import logging

from empathy_tf.data.sources import base as source_parsing
from empathy_tf.errors import ConfigError, DataError

DEFAULT_TOPICS = ("cancer",)
DEFAULT_TOP_K = 100  # the paper does not state its K; choose it (and/or a word list) per study
LEXICON_HEADER = ("word", "rating")
_PLACEHOLDER_RE = re.compile(r"<URL>|<USER>")


def load_lexicon(path):
    """Reads a `word,rating` lexicon CSV; returns {lowercased word: rating}.

    Raises:
        DataError: missing/unreadable file, wrong header, or a bad row; the message names the file
            and the 1-based line.
    """
    text = source_parsing.read_text(path)  # strict UTF-8, DataError
    lexicon, line_of = {}, {}
    header_seen = False
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            row = next(csv.reader([line], strict=True))
        except csv.Error as e:
            raise DataError(f"{path}, line {number}: malformed CSV row ({e}); expected "
                            '"word",rating') from None
        if not header_seen:
            if tuple(c.strip().lower() for c in row) != LEXICON_HEADER:
                raise DataError(f"{path}, line {number}: header {row}; expected the columns "
                                f"{list(LEXICON_HEADER)}")
            header_seen = True
            continue
        if len(row) != 2:
            raise DataError(f"{path}, line {number}: row has {len(row)} fields {row}; expected "
                            '2 ("word",rating)')
        word = row[0].strip().lower()
        if not word:
            raise DataError(f"{path}, line {number}: field 'word' is empty; expected a word")
        try:
            rating = float(row[1])
        except ValueError:
            rating = math.nan
        if not math.isfinite(rating):
            raise DataError(f"{path}, line {number}: field 'rating' has value {row[1]!r}; "
                            "expected a finite number")
        if word in lexicon:
            raise DataError(f"{path}, line {number}: the word {word!r} is already on line "
                            f"{line_of[word]}; expected each word once")
        lexicon[word] = rating
        line_of[word] = number
    if not lexicon:
        raise DataError(f"{path}: no lexicon rows; expected a header {','.join(LEXICON_HEADER)} "
                        "and one row per word")
    return lexicon


def read_word_list(path):
    """One word (or phrase) per line; blank lines and lines starting with # are skipped."""
    text = source_parsing.read_text(path)
    words = [w.strip().lower() for w in text.splitlines()]
    words = [w for w in words if w and not w.startswith("#")]
    if not words:
        raise DataError(f"{path}: no words; expected one word per line")
    return words


def top_words(lexicon, k=DEFAULT_TOP_K, restrict_to=None):
    """The k highest-rated lexicon words (ties by the word), optionally among `restrict_to` only.

    Words of `restrict_to` missing from the lexicon are ignored (with a warning).
    """
    if k < 1:
        raise ConfigError(f"top_k must be >= 1, got {k}")
    candidates = {w: r for w, r in lexicon.items() if re.search(r"[^\W\d_]", w)}
    if restrict_to is not None:
        wanted = {w.strip().lower() for w in restrict_to if w.strip()}
        missing = sorted(wanted - set(candidates))
        if missing:
            logging.warning("%d word(s) of the word list are not in the lexicon (or have no "
                            "letter) and are ignored: %s", len(missing), missing[:20])
        candidates = {w: r for w, r in candidates.items() if w in wanted}
        if not candidates:
            raise ConfigError("no word of the word list is in the lexicon")
    return [w for w, _ in sorted(candidates.items(), key=lambda wr: (-wr[1], wr[0]))[:k]]


def whole_word_pattern(words):
    """A case-insensitive regex matching any of `words` as a whole word (see module docstring)."""
    words = sorted({w.strip().lower() for w in words if w.strip()}, key=lambda w: (-len(w), w))
    if not words:
        raise ConfigError("no words to match")
    body = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


def normalise(text):
    """The duplicate key: casefolded, whitespace runs collapsed."""
    return " ".join(text.casefold().split())


@dataclasses.dataclass
class CollectionReport:
    read: int = 0
    empty: int = 0
    no_empathy_word: int = 0
    no_topic: int = 0
    duplicates: int = 0
    kept: int = 0
    empathy_word_counts: dict = dataclasses.field(default_factory=dict)

    def summary(self):
        return (f"read {self.read} posts: kept {self.kept}; dropped {self.empty} empty, "
                f"{self.no_empathy_word} without an empathy word, {self.no_topic} without a topic "
                f"keyword, {self.duplicates} duplicates")


def collect(posts, empathy_words, topics=DEFAULT_TOPICS):
    """Filters raw posts; returns (kept preprocessed posts in input order, CollectionReport)."""
    topic_set = {" ".join(t.lower().split()) for t in topics}
    # A topic keyword may itself be a high-empathy word ("cancer" rates 6.19); it must not
    # satisfy both conditions alone.
    empathy_words = [w for w in empathy_words if " ".join(w.lower().split()) not in topic_set]
    empathy_re = whole_word_pattern(empathy_words)
    topic_re = whole_word_pattern(topics)
    report = CollectionReport()
    counts = collections.Counter()
    seen = set()
    kept = []
    for post in posts:
        report.read += 1
        text = source_parsing.preprocess_tweet(post.strip())
        if not text:
            report.empty += 1
            continue
        # The placeholders are not words of the post ("user" must not match "<USER>").
        words_only = _PLACEHOLDER_RE.sub(" ", text)
        found = empathy_re.findall(words_only)
        if not found:
            report.no_empathy_word += 1
            continue
        if not topic_re.search(words_only):
            report.no_topic += 1
            continue
        key = normalise(text)
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        counts.update({" ".join(w.lower().split()) for w in found})
        kept.append(text)
    report.kept = len(kept)
    report.empathy_word_counts = dict(counts.most_common())
    return kept, report


def read_posts(path, column=None, delimiter=None):
    """Raw posts: one per line, or the `column` of a CSV/TSV file with a header.

    Raises:
        DataError: missing file, or a CSV without that column (file and line named).
    """
    if column is None:
        text = source_parsing.read_text(path)
        return [line for line in text.splitlines() if line.strip()]
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
    posts = []
    header = None
    rows = source_parsing.csv_rows(path, delimiter, (column,))
    for line, row in rows:
        if header is None:
            header = [h.strip() for h in row]
            if column not in header:
                raise DataError(f"{path}, line {line}: no column {column!r}; columns found: "
                                f"{header}")
            index = header.index(column)
            continue
        if index >= len(row):
            raise DataError(f"{path}, line {line}: row has {len(row)} fields; expected the "
                            f"column {column!r} (field {index + 1})")
        posts.append(row[index])
    return posts


def run(input_path, output_path, lexicon_path, top_k=DEFAULT_TOP_K, words_path=None,
        topics=DEFAULT_TOPICS, column=None):
    """Reads, filters and writes posts (one per line, atomically); returns (words, report)."""
    from empathy_tf import io_utils
    lexicon = load_lexicon(lexicon_path)
    restrict = read_word_list(words_path) if words_path else None
    words = top_words(lexicon, top_k, restrict)
    kept, report = collect(read_posts(input_path, column), words, topics)
    # One post per line: line breaks inside a post become spaces.
    io_utils.atomic_write_text(output_path, "".join(" ".join(p.split()) + "\n" for p in kept))
    return words, report


def run_cli(input_path, output_path, lexicon_path, top_k, words_path, topics, column):
    """What `python -m experiments.collect` does; returns the exit code (2 for user errors)."""
    import sys
    from empathy_tf.errors import EmpathyTFError
    if not input_path or not output_path:
        print("error: --input and --output are required", file=sys.stderr)
        return 2
    try:
        words, report = run(input_path, output_path, lexicon_path, top_k, words_path,
                            tuple(topics), column)
    except EmpathyTFError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    more = " ..." if len(words) > 30 else ""
    print(f"empathy words ({len(words)}): {', '.join(words[:30])}{more}")
    print(f"topics: {', '.join(topics)}")
    print(report.summary())
    print(f"written to {output_path}")
    return 0
