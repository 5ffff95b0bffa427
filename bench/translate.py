"""Translation speed: argostranslate's own translate() vs raw CTranslate2 vs pressflow's stage.

    python bench/translate.py            # full run (~8 min on 2 cores)
    python bench/translate.py --max-length 16   # longer output (~25 min)
    python bench/translate.py --quick    # smoke run (~2 min)

One run, one model, one corpus, four contenders, medians over repetitions:

1. argostranslate `translate()` once per text, as its users call it (ARGOS_CHUNK_TYPE=SPACY, the
   package's bundled blank spaCy sentencizer, offline);
2. raw CTranslate2 `translate_batch` on the distinct sentences, pre-tokenized and length
   sorted, with the best batch size found: the engine's limit on this machine;
3. pressflow's translation stage, cold (empty translation memory);
4. the stage again after 1% of the texts changed (warm memory).

The model is a Transformer-base Argos package with random weights (testmodel, size "base") whose
end token is suppressed, so every contender decodes exactly `--max-length` tokens per sentence
(argostranslate's Translator is wrapped to pass the same max_decoding_length), beam 4 for all.
The package is built once and cached in bench/.cache/.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--sentences", type=int, help="corpus size in sentences (default 2000; quick 200)")
    parser.add_argument("--max-length", type=int, help="decoded tokens per sentence (default 4)")
    parser.add_argument("--repeats", type=int, help="repetitions per contender (default 3; quick 2)")
    args = parser.parse_args()
    args.sentences = args.sentences or (200 if args.quick else 2000)
    args.max_length = args.max_length or 4
    # argostranslate alone takes ~2 min per repetition of 2,000 sentences at 4 tokens on 2 cores
    # (~7 min at 16): three repetitions give a median that one slow run cannot move
    args.repeats = args.repeats or (2 if args.quick else 3)
    return args


ARGS = parse_args()
# Before anything imports argostranslate (settings are read at import) or the engine.
os.environ.update({
    "ARGOS_PACKAGES_DIR": str(CACHE / "argos-packages"),
    "ARGOS_CHUNK_TYPE": "SPACY",
    "XDG_CACHE_HOME": str(CACHE / "xdg-cache"),
    "XDG_DATA_HOME": str(CACHE / "xdg-data"),
    "PRESSFLOW_MAX_DECODING_LENGTH": str(ARGS.max_length),
})
# argostranslate's spaCy chunker downloads a sentence model unless this folder exists; the
# package's own spacy/ pipeline takes priority anyway.
(CACHE / "xdg-cache" / "argos-translate" / "spacy" / "senter" / "model").mkdir(parents=True, exist_ok=True)
(CACHE / "argos-packages").mkdir(parents=True, exist_ok=True)

BEAM = 4


# --------------------------------------------------------------------------- corpus


def corpus(sentences: int, seed: int = 7) -> list[str]:
    """Press releases and posts rendered from variations of the bundled events.

    Repetition as an archive has it: every release shares the organization's boilerplate,
    posts repeat their release's title and summary, quotes and body paragraphs recur.
    """
    from pressflow.core.config import Settings
    from pressflow.records import load_records
    from pressflow.render import Renderer, strip_keep
    from pressflow.translate.segment import split_document

    rng = random.Random(seed)
    events = [event for _, event in load_records([ROOT / "events"]).events]
    paragraphs = [p for e in events for p in e.body]
    quotes = [q for e in events for q in e.quotes]
    cities = ["Beijing", "Bangkok", "Nairobi", "Tashkent", "Lima", "Islamabad", "Colombo", "Minsk", "Accra"]
    renderer = Renderer(Settings(out_dir=Path(tempfile.mkdtemp())))
    texts: list[str] = []
    count, i = 0, 0
    while count < sentences:
        base = events[i % len(events)]
        body = rng.sample(paragraphs, k=min(3, len(paragraphs)))
        update = {"id": f"{base.slug}-{i}", "title": f"{base.title} ({rng.choice(cities)} {2021 + i // 40})",
                  "date": base.date.replace(day=1 + i % 28), "body": body,
                  "quotes": rng.sample(quotes, k=min(2, len(quotes)))}
        event = base.model_copy(update=update)
        for draft in renderer.drafts(event, "en"):
            text = strip_keep(draft.variants[0])
            texts.append(text)
            count += sum(p.translate for p in split_document(text))
        i += 1
    return texts


def change_one_percent(texts: list[str], round_: int) -> list[str]:
    """A copy where 1% of the texts got a new sentence (as an edited record would)."""
    rng = random.Random(1000 + round_)
    changed = list(texts)
    for index in rng.sample(range(len(texts)), k=max(1, len(texts) // 100)):
        changed[index] += f"\n\nUpdate {round_}.{index}: the organizers added a session on day {index % 5 + 1}."
    return changed


# --------------------------------------------------------------------------- model


def model_package() -> Path:
    from pressflow.translate import testmodel
    from pressflow.translate.models import installed_models

    path = testmodel.build_package("en", "es", CACHE, size="base", suppress_eos=True)
    if not any(m.source == "en" and m.target == "es" for m in installed_models()):
        testmodel.install_package(path)
    [model] = [m for m in installed_models() if (m.source, m.target) == ("en", "es")]
    return model


# --------------------------------------------------------------------------- contenders


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def argos_contender(max_length: int):
    """argostranslate.translate.translate(), with its Translator's decoding length pinned."""
    import argostranslate.translate as argos_translate
    import ctranslate2

    class SameLength:
        """ctranslate2.Translator that passes max_decoding_length on every translate_batch."""

        def __init__(self, *args, **kwargs):
            self._translator = ctranslate2.Translator(*args, **kwargs)

        def translate_batch(self, *args, **kwargs):
            return self._translator.translate_batch(*args, **{**kwargs, "max_decoding_length": max_length})

    argos_translate.ctranslate2 = types.SimpleNamespace(Translator=SameLength)
    assert argos_translate.settings.beam_size == BEAM

    def run(texts: list[str]) -> None:
        for text in texts:
            argos_translate.translate(text, "en", "es")

    return run


def raw_contender(model, sentences: list[str], max_length: int):
    """CTranslate2 translate_batch on pre-tokenized sentences; returns (run, best batch size)."""
    import ctranslate2
    import sentencepiece

    translator = ctranslate2.Translator(str(model.path / "model"), device="cpu", compute_type="auto")
    tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(model.path / "sentencepiece.model"))
    tokens = sorted(tokenizer.encode(sentences, out_type=str), key=len)

    def run_with(batch_size: int, batch: list[list[str]]) -> None:
        translator.translate_batch(batch, beam_size=BEAM, max_batch_size=batch_size, length_penalty=0.2,
                                   replace_unknowns=True, max_decoding_length=max_length)

    sample = tokens[:: max(1, len(tokens) // 64)][:64]
    trials = {size: timed(lambda size=size: run_with(size, sample)) for size in (16, 32, 64)}
    best = min(trials, key=trials.get)
    print(f"  batch size search on {len(sample)} sentences: "
          + ", ".join(f"{size}: {t:.2f}s" for size, t in trials.items()) + f" -> {best}")
    return (lambda: run_with(best, tokens)), best


def stage_contender(model):
    from pressflow.memory.store import SqlMemory
    from pressflow.translate.protect import Glossary
    from pressflow.translate.stage import StageStats, translate_documents

    from pressflow.translate import segment

    glossary = Glossary.load()

    def run(texts: list[str], db: Path) -> StageStats:
        # Every run starts as a new prepare process would: no sentence splits kept from before
        # (the corpus statistics above and earlier runs fill that cache).
        segment.forget_spans()
        stats = StageStats()
        translate_documents(texts, "en", "es", glossary=glossary, memory=SqlMemory(f"sqlite:///{db}"),
                            models=[model], stats=stats)
        return stats

    return run


# --------------------------------------------------------------------------- main


def report(name: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(f"{name}: median {median:.2f}s  runs " + " ".join(f"{t:.2f}s" for t in times), flush=True)
    return median


def main() -> None:
    from pressflow.translate import engine
    from pressflow.translate.segment import split_document

    started = time.perf_counter()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; max_decoding_length={ARGS.max_length}, "
          f"beam {BEAM}, {ARGS.repeats} repetitions", flush=True)
    model = model_package()
    texts = corpus(ARGS.sentences)
    sentences = [p.text for text in texts for p in split_document(text) if p.translate]
    distinct = list(dict.fromkeys(sentences))
    print(f"corpus: {len(texts)} texts, {len(sentences)} sentences, {len(distinct)} distinct; "
          f"model: {model.path.name} (Transformer base, random weights, </s> suppressed)", flush=True)

    raw_run, best = raw_contender(model, distinct, ARGS.max_length)
    engine.BATCH_SIZE = best  # the stage uses the same batch size as the raw baseline
    argos_run = argos_contender(ARGS.max_length)
    stage_run = stage_contender(model)
    work = Path(tempfile.mkdtemp(prefix="pressflow-bench-"))
    argos_run(texts[:1])  # load each contender's model before timing
    stage_run(texts[:1], work / "warmup.db")

    argos_times = [timed(lambda: argos_run(texts)) for _ in range(ARGS.repeats)]
    argos = report("1 argostranslate translate() per text", argos_times)
    raw = report(f"2 ctranslate2 translate_batch (distinct sentences, batch {best})",
                 [timed(raw_run) for _ in range(ARGS.repeats)])
    cold_times, warm_times = [], []
    for round_ in range(ARGS.repeats):
        db = work / f"memory-{round_}.db"
        cold_times.append(timed(lambda: stage_run(texts, db)))
        changed = change_one_percent(texts, round_)
        stats = None

        def warm_run():
            nonlocal stats
            stats = stage_run(changed, db)

        warm_times.append(timed(warm_run))
    cold = report("3 pressflow stage, cold memory", cold_times)
    warm = report(f"4 pressflow stage, warm after 1% of texts changed ({stats.translated} segments to the model, "
                  f"{stats.from_memory} from memory)", warm_times)
    print(f"warm vs argostranslate: {argos / warm:.1f}x faster")
    print(f"total bench time {time.perf_counter() - started:.0f}s")
    # warm_speedup is what the memory buys: the same stage, cold vs warm.
    print(f"speedup_vs_argostranslate={argos / cold:.2f} overhead_vs_ctranslate2={cold / raw:.2f} "
          f"warm_speedup={cold / warm:.1f}")


if __name__ == "__main__":
    main()
