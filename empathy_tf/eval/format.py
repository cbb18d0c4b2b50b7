"""Small formatting helpers shared by tables, reports and progress logs, and a figure writer.

Fractions are shown as percentages with two decimals; anything missing is NA (an em dash).

Example:

    duration(3723)                        # '1h02m03s'
    percent_pm(0.6379, 0.0123)            # '63.79 ± 1.23'
    points(-1.234, signed=True)           # '-1.23'
    interval(-0.5, 2.25)                  # '[-0.50, +2.25]'
    p_value(0.00012)                      # '1.2e-04'
"""

import io
import os
import shlex
import tempfile

NA = "—"

_UMASK = os.umask(0)
os.umask(_UMASK)


def duration(seconds):
    """'1h02m03s', '4m05s' or '7s'."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def percent(fraction):
    """A fraction as a percentage, '63.79' (NA for None)."""
    return NA if fraction is None else f"{100.0 * fraction:.2f}"


def percent_pm(mean, std):
    """Mean ± std of fractions as percentages, '63.79 ± 1.23' (NA when there is no mean)."""
    return NA if mean is None else f"{100.0 * mean:.2f} ± {100.0 * (std or 0.0):.2f}"


def points(value, signed=False):
    """A value already in points (percentages), '2.10' or '+2.10'."""
    if value is None:
        return NA
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def interval(low, high):
    """'[-0.50, +2.25]' (points); NA when undefined."""
    return NA if low is None or high is None else f"[{low:+.2f}, {high:+.2f}]"


def p_value(p):
    """'0.034', or '1.2e-04' below 0.001; NA when undefined."""
    if p is None:
        return NA
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def plural(count, word):
    """'1 seed', '3 seeds'."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def numbers(values):
    """'0, 1, 2' or '0-9' for a run of consecutive integers."""
    values = sorted(set(int(v) for v in values))
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))


def command(argv):
    """The command line as typed: `python -m experiments.run ...` rather than a script path."""
    argv = list(argv)
    if argv and argv[0].replace(os.sep, "/").endswith("experiments/run.py"):
        argv[0:1] = ["python", "-m", "experiments.run"]
    return " ".join(shlex.quote(a) for a in argv)


def save_figure(fig, path, dpi=110):
    """Writes a matplotlib figure atomically (a reader never sees half a file), in the format of
    the path's extension (`.png`, `.pdf`)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=os.path.splitext(path)[1].lstrip(".") or "png", dpi=dpi,
                bbox_inches="tight")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give results the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
