"""Benchmark: aligning a reviewer's edit with a draft's sentences, against the old character diff.

    python bench/edits.py                  # sizes 2k, 5k, 50k characters, 5 repetitions (~1 min)
    python bench/edits.py --sizes 10000 --repeats 3

A synthetic release (headings, paragraphs of several sentences) of each size is laid out as the
translation stage leaves it, then edited in the shapes that matter: one sentence reworded (what
reviewers do), every line touched (a search-and-replace), the text pasted twice over (the attack
that took minutes), and the text reversed (nothing in common). For each shape the new alignment
(`translate.layout.align`: the glue followed with common ends trimmed, lines matched by
rapidfuzz's LCS and characters compared only inside changed lines within a budget, else the
text split with the language's sentence rules, sentence spans forgotten before each run so
pysbd's work counts) is timed against the baseline measured in
the same run: difflib's SequenceMatcher over the whole texts, as the alignment worked before.
Figures are medians; the ratio is baseline / new (above 1: the new one is faster). The baseline
is quadratic (42 s for one reworded sentence at 20k characters here), so it is measured only up
to --baseline-max characters.

Target: every edit of a draft within the size limit (50,000 characters) aligned in < 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from difflib import SequenceMatcher

from pressflow.translate import layout as layouts
from pressflow.translate.segment import forget_spans


def release(size: int) -> tuple[str, list[dict]]:
    """A draft's text of about `size` characters and its segments, as prepare stores them."""
    lines, segments, n = [], [], 0
    while sum(map(len, lines)) < size:
        heading = f"Titular número {n} del foro"
        sentences = [f"La frase {n}.{i} habla del mar de Aral y de sus {i + 3} socios." for i in range(4)]
        lines += [f"## {heading}\n", "\n", " ".join(sentences) + "\n", "\n"]
        segments += [{"text": heading}] + [{"text": s} for s in sentences]
        n += 1
    return "".join(lines), segments


def shapes(text: str) -> dict[str, str]:
    middle = text.index("La frase", len(text) // 2)
    return {
        "one sentence": text[:middle] + "Una frase reescrita por la revisora." + text[text.index(".", middle) + 1:],
        "every line": text.replace("socios", "miembros"),
        "pasted twice": text * 2,
        "reversed": text[::-1],
    }


def old_follow_cost(old: str, new: str) -> None:
    SequenceMatcher(None, old, new, autojunk=False).get_opcodes()


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 5_000, 50_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-max", type=int, default=6_000, help="no baseline above this size")
    args = parser.parse_args()
    print(f"{'size':>7}  {'edit':<13} {'new (s)':>9} {'baseline (s)':>13} {'ratio':>8}")
    for size in args.sizes:
        text, segments = release(size)
        layout = layouts.first_layout(text, segments)
        for name, edited in shapes(text).items():
            new = median_seconds(lambda: forget_spans() or layouts.align(layout, edited, "es", len(segments)),
                                 args.repeats)
            if size > args.baseline_max:
                print(f"{len(text):>7}  {name:<13} {new:>9.4f} {'-':>13} {'-':>8}")
                continue
            base = median_seconds(lambda: old_follow_cost(text, edited), args.repeats)
            print(f"{len(text):>7}  {name:<13} {new:>9.4f} {base:>13.4f} {base / max(new, 1e-6):>8.1f}")


if __name__ == "__main__":
    main()
