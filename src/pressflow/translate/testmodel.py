"""Build small but genuine Argos Translate packages with random weights.

Why: tests and benchmarks must exercise the real translation stack
(argostranslate's installer, CTranslate2, SentencePiece, spaCy sentence
splitting) offline, and real Argos models cannot be downloaded here. The
packages built here have the real Argos layout and a real CTranslate2
Transformer, only the weights are random, so the output is gibberish by design.

Layout inside the ``.argosmodel`` zip (what argostranslate 1.11 reads)::

    translate-<from>_<to>-1_0/
        metadata.json        # codes, names, type "translate", + our fingerprint
        model/               # CTranslate2 model.bin + shared_vocabulary.json
        sentencepiece.model  # shared SentencePiece vocab, ids == CT2 vocab ids
        spacy/               # blank spaCy pipeline, used with ARGOS_CHUNK_TYPE=SPACY
        README.md
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Bump when the build recipe changes, so cached packages get rebuilt.
BUILDER_VERSION = 1
FINGERPRINT_KEY = "pressflow_test_model"

# SentencePiece ids; the CTranslate2 vocabulary is the SentencePiece piece list
# in id order, so these must also be the CT2 special tokens (<unk>, <s>, </s>).
UNK, BOS, EOS, PAD = 0, 1, 2, 3
SPECIAL_PIECES = ("<unk>", "<s>", "</s>", "<blank>")
# Our translation stage wraps protected items as ⟦0⟧; keep the brackets atomic.
USER_SYMBOLS = ("⟦", "⟧")

SEED_TEXT = Path(__file__).resolve().parents[3].parent / "shared" / "seed" / "anso-activities-2021.txt"


@dataclass(frozen=True)
class ModelSize:
    """Transformer hyper-parameters and target SentencePiece vocabulary size."""

    encoder_layers: int
    decoder_layers: int
    d_model: int
    num_heads: int
    ffn: int
    vocab_size: int
    quantization: str


SIZES: dict[str, ModelSize] = {
    # Trains and saves in about a second: for unit tests.
    "tiny": ModelSize(2, 2, 64, 4, 128, 1000, "float32"),
    # The real Argos architecture (Transformer base, int8 like shipped models).
    "base": ModelSize(6, 6, 512, 8, 2048, 32000, "int8"),
}


# --------------------------------------------------------------------------- API


def build_package(
    from_code: str,
    to_code: str,
    out_dir: Path,
    *,
    size: str = "tiny",
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    suppress_eos: bool = False,
) -> Path:
    """Build `<out_dir>/translate-<from>_<to>-test.argosmodel` and return its path.

    The zip holds a real Argos package with random weights (see module doc).
    A file already built with the same parameters (fingerprint stored in its
    metadata.json) is reused, so repeated test runs are fast. With
    ``suppress_eos`` the decoder can never emit ``</s>``: every sentence decodes
    to ``max_decoding_length`` tokens, which benchmarks want for equal work.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
    extra = [line for line in (corpus or ()) if line.strip()]
    fingerprint = _fingerprint(from_code, to_code, size, seed, extra, suppress_eos)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"translate-{from_code}_{to_code}-test.argosmodel"

    from filelock import FileLock  # parallel test workers may share out_dir

    with FileLock(str(path) + ".lock"):
        if _stored_fingerprint(path) == fingerprint:
            return path
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
            top = Path(tmp) / f"translate-{from_code}_{to_code}-1_0"
            _build_tree(top, from_code, to_code, SIZES[size], seed, extra, suppress_eos, fingerprint)
            partial = Path(tmp) / path.name
            _zip_dir(top, partial)
            partial.replace(path)  # atomic: readers never see a half-written zip
    return path


def install_package(path: Path) -> None:
    """Install as `pressflow models install --replace` does (checked, staged, one rename),
    taking the place of an earlier build for the same pair.

    argostranslate reads ARGOS_PACKAGES_DIR when argostranslate.settings is
    first imported, so set it before anything imports argostranslate.
    """
    from .models import install_file

    install_file(Path(path), replace=True)


def build_and_install(pairs: Iterable[tuple[str, str]], work_dir: Path, **kw) -> list[Path]:
    """Build (or reuse) and install one package per (from, to) pair; return the zips."""
    paths = [build_package(src, tgt, Path(work_dir), **kw) for src, tgt in pairs]
    for path in paths:
        install_package(path)
    return paths


# ------------------------------------------------------------------ fingerprint


def _fingerprint(from_code, to_code, size, seed, extra, suppress_eos) -> str:
    """Hash of everything the build depends on (cheap: no corpus generation)."""
    h = hashlib.sha256()
    params = [BUILDER_VERSION, from_code, to_code, asdict(SIZES[size]), seed, suppress_eos]
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(SEED_TEXT.read_bytes() if SEED_TEXT.exists() else b"")
    for line in extra:
        h.update(line.encode() + b"\n")
    return h.hexdigest()[:16]


def _stored_fingerprint(path: Path) -> str | None:
    """The fingerprint in an existing package's metadata.json, if readable."""
    try:
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith("/metadata.json"))
            return json.loads(zf.read(name)).get(FINGERPRINT_KEY, {}).get("fingerprint")
    except (OSError, zipfile.BadZipFile, StopIteration, ValueError):
        return None


# ------------------------------------------------------------------------ build


def _build_tree(top, from_code, to_code, size, seed, extra, suppress_eos, fingerprint) -> None:
    """Write the unzipped package directory."""
    top.mkdir(parents=True)
    sp_bytes = _train_sentencepiece(_corpus(size, seed, extra), size.vocab_size, seed)
    (top / "sentencepiece.model").write_bytes(sp_bytes)
    vocab = _pieces(sp_bytes)
    (top / "model").mkdir()
    _build_ct2_model(vocab, size, seed, suppress_eos).save(str(top / "model"))
    _save_spacy(from_code, top / "spacy")
    info = {"fingerprint": fingerprint, "size": asdict(size), "seed": seed,
            "suppress_eos": suppress_eos, "vocab_size": len(vocab)}
    metadata = {
        "package_version": "1.0",
        "argos_version": "1.0",
        "from_code": from_code,
        "from_name": _language_name(from_code),
        "to_code": to_code,
        "to_name": _language_name(to_code),
        "type": "translate",
        "links": [],
        FINGERPRINT_KEY: info,
    }
    (top / "metadata.json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False))
    (top / "README.md").write_text(
        f"# Test model {from_code} -> {to_code}\n\n"
        "Random-weight Transformer built by pressflow.translate.testmodel for offline "
        "tests and benchmarks. Its translations are gibberish by design.\n\n"
        f"```json\n{json.dumps(info, indent=2)}\n```\n"
    )


def _zip_dir(top: Path, dest: Path) -> None:
    """Zip `top` so that the archive holds `top.name/...` like real packages."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for file in sorted(top.rglob("*")):
            zf.write(file, file.relative_to(top.parent).as_posix())


def _language_name(code: str) -> str:
    """English name of a language code via babel, then pycountry; else the code."""
    try:
        from babel import Locale

        return Locale.parse(code).english_name
    except Exception:  # babel raises several types for unknown codes (zt, pb, ...)
        import pycountry

        lang = pycountry.languages.get(alpha_2=code) or pycountry.languages.get(alpha_3=code)
        return lang.name if lang else code


def _save_spacy(lang: str, dest: Path) -> None:
    """Save a blank spaCy pipeline with a rule-based sentencizer.

    argostranslate (ARGOS_CHUNK_TYPE=SPACY) does `spacy.load(pkg/"spacy")` and
    then `add_pipe("sentencizer")` itself, which raises E007 if a pipe already has
    that name; so ours is named differently (harmless duplicate for argos, and it
    makes the folder usable on its own).
    """
    import spacy

    try:
        nlp = spacy.blank(lang)
    except Exception:  # no spaCy class (zt, pb) or missing extra deps (ja, ko, th, vi)
        nlp = spacy.blank("xx")
    nlp.add_pipe("sentencizer", name="packaged_sentencizer")
    nlp.to_disk(dest)


# ---------------------------------------------------------------- SentencePiece


def _train_sentencepiece(lines: list[str], vocab_size: int, seed: int) -> bytes:
    """Train a shared unigram SentencePiece model in memory; return its bytes."""
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)  # input shuffling is random otherwise
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buf,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # small corpora may not reach vocab_size
        unk_id=UNK, bos_id=BOS, eos_id=EOS, pad_id=PAD,
        unk_piece=SPECIAL_PIECES[UNK], bos_piece=SPECIAL_PIECES[BOS],
        eos_piece=SPECIAL_PIECES[EOS], pad_piece=SPECIAL_PIECES[PAD],
        user_defined_symbols=list(USER_SYMBOLS),
        byte_fallback=True,  # nothing is ever <unk>: unseen chars become <0xNN>
        split_digits=True,  # any number, e.g. placeholder ids, is made of digit pieces
        character_coverage=0.9995,
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        num_threads=4,
        minloglevel=2,
    )
    return buf.getvalue()


def _pieces(sp_bytes: bytes) -> list[str]:
    """All pieces in id order: this list is the CTranslate2 shared vocabulary."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=sp_bytes)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    assert tuple(pieces[:4]) == SPECIAL_PIECES, pieces[:4]
    return pieces


def _corpus(size: ModelSize, seed: int, extra: list[str]) -> list[str]:
    """Training text: the seed press release, generated press sentences, `extra`.

    For the 32k vocabulary we add multilingual display names from babel's CLDR
    data (all locales), which is the only large varied text available offline.
    """
    lines = list(extra)
    big = size.vocab_size > 4000
    if SEED_TEXT.exists():
        text = " ".join(SEED_TEXT.read_text(encoding="utf-8").split())
        lines += [s.strip() + "." for s in text.split(". ") if s.strip()]
    lines += list(_press_sentences(random.Random(seed), 30000 if big else 3000))
    if big:
        lines += _cldr_names()
    return lines


def _press_sentences(rng: random.Random, n: int) -> Iterator[str]:
    """Template press-release sentences with names, places, dates, placeholders."""
    import pycountry

    countries = [c.name for c in pycountry.countries]
    people = ["Prof. BAI Chunli", "Dr. CAO Jinghua", "Ms. Maria García", "Mr. John Smith",
              "Prof. Aïcha Diallo", "Dr. Olga Petrova", "Mr. Kenji Sato", "Ms. Ana Souza"]
    verbs = ["opened", "announced", "signed", "launched", "hosted", "attended", "presented",
             "welcomed", "chaired", "visited", "celebrated", "inaugurated"]
    things = ["the exhibition", "a new partnership", "the annual report", "the workshop",
              "a joint laboratory", "the training programme", "the conference",
              "a memorandum of understanding", "the scholarship call", "the summit"]
    months = ["January", "February", "March", "April", "May", "June", "July",
              "August", "September", "October", "November", "December"]
    for i in range(n):
        date = f"{rng.randint(1, 28)} {rng.choice(months)} {rng.randint(1990, 2030)}"
        sentence = (f"{rng.choice(people)} {rng.choice(verbs)} {rng.choice(things)} in "
                    f"{rng.choice(countries)} on {date}.")
        extra = rng.choice([
            f" Contact press{i}@example.org or follow #Science{rng.randint(0, 99)}.",
            f" See ⟦{rng.randint(0, 20)}⟧ and ⟦{rng.randint(0, 20)}⟧ for details.",
            f" About {rng.randint(2, 5000)} participants ({rng.randint(1, 99)}%) joined.",
            f" Visit https://www.example.org/news/{rng.randint(100, 999)} for more.",
            "",
        ])
        yield sentence + extra


def _cldr_names() -> list[str]:
    """Language, territory, currency and script names in every babel locale."""
    from babel import Locale, localedata

    lines = []
    for ident in sorted(localedata.locale_identifiers()):
        loc = Locale.parse(ident)
        for names in (loc.territories, loc.languages, loc.currencies, loc.scripts):
            lines.append(" ".join(sorted(set(names.values()))))
    return lines


# ------------------------------------------------------------------ CTranslate2


def _build_ct2_model(vocab: list[str], size: ModelSize, seed: int, suppress_eos: bool):
    """A validated, optimized TransformerSpec with seeded random weights."""
    from ctranslate2.specs import TransformerSpec

    spec = TransformerSpec.from_config(
        (size.encoder_layers, size.decoder_layers), size.num_heads
    )  # pre-norm, ReLU, sinusoidal positions: the OpenNMT-py/Argos defaults
    w = _Weights(np.random.default_rng(seed), size.d_model)
    v = len(vocab)

    enc = spec.encoder
    enc.embeddings[0].weight = w.normal(v, size.d_model)
    w.norm(enc.layer_norm)
    for layer in enc.layer:
        w.attention(layer.self_attention, self_attention=True)
        w.ffn(layer.ffn, size.ffn)

    dec = spec.decoder
    dec.embeddings.weight = w.normal(v, size.d_model)
    w.norm(dec.layer_norm)
    for layer in dec.layer:
        w.attention(layer.self_attention, self_attention=True)
        w.attention(layer.attention, self_attention=False)
        w.ffn(layer.ffn, size.ffn)
    w.linear(dec.projection, v, size.d_model)
    if suppress_eos:
        # Logit of </s> is ~-1e4 so beam/greedy search never ends a sentence early.
        dec.projection.bias[EOS] = -1e4

    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)  # identical lists -> shared_vocabulary.json
    spec.validate()
    spec.optimize(quantization=size.quantization)
    return spec


class _Weights:
    """Fills spec layers with N(0, 0.02) weights: small enough to keep outputs finite."""

    def __init__(self, rng: np.random.Generator, d_model: int, std: float = 0.02):
        self.rng, self.d, self.std = rng, d_model, std

    def normal(self, *shape: int) -> np.ndarray:
        return (self.rng.standard_normal(shape, dtype=np.float32) * self.std).astype(np.float32)

    def linear(self, spec, out_dim: int, in_dim: int) -> None:
        spec.weight = self.normal(out_dim, in_dim)  # CT2 stores (out, in)
        spec.bias = np.zeros(out_dim, dtype=np.float32)

    def norm(self, spec) -> None:
        spec.gamma = np.ones(self.d, dtype=np.float32)
        spec.beta = np.zeros(self.d, dtype=np.float32)

    def attention(self, spec, *, self_attention: bool) -> None:
        d = self.d
        self.norm(spec.layer_norm)
        if self_attention:  # linear[0] is the fused Q,K,V projection
            self.linear(spec.linear[0], 3 * d, d)
        else:  # cross-attention: Q from decoder, fused K,V from encoder output
            self.linear(spec.linear[0], d, d)
            self.linear(spec.linear[1], 2 * d, d)
        self.linear(spec.linear[-1], d, d)  # output projection

    def ffn(self, spec, hidden: int) -> None:
        self.norm(spec.layer_norm)
        self.linear(spec.linear_0, hidden, self.d)
        self.linear(spec.linear_1, self.d, hidden)
