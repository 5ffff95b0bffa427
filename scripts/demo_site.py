#!/usr/bin/env python3
"""Publish the bundled example events as a demo site, in English, Spanish, Chinese and Arabic.

    python scripts/demo_site.py OUT [--languages es,zh,ar]

Translation uses small genuine Argos packages with random weights (`pressflow models build-test`),
installed into OUT's own folder, never into the user's: the translated text is gibberish by
design, the site around it is what this shows. The browser tests use it; it prints the output
folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A release with a long address and an e-mail, to show links and wrapping on a narrow screen.
EXTRA = {"id": "2021-10-20-data-sharing-workshop", "title": "Open data sharing workshop for Central Asian research institutes",
         "date": "2021-10-20", "summary": "Researchers from five countries met online to agree on shared R&D data standards.",
         "location": {"city": "Tashkent", "country": "UZ"},
         "body": ["The workshop's recordings and slides are at "
                  "https://www.anso.org.cn/programmes/data-sharing/2021/workshop-recordings-and-presentation-slides-for-all-participants.html"
                  " and questions go to data-office@anso.example.org."],
         "quotes": [{"speaker": "Dr. Olga Petrova", "role": "Workshop chair", "text": "Shared data is shared progress."},
                    {"speaker": "Mr. Kenji Sato", "text": "Standards make the difference."}],
         "links": [{"title": "Workshop page", "url": "https://www.anso.org.cn/programmes/data-sharing/"}],
         "contact": {"name": "ANSO Data Office", "email": "data-office@anso.example.org", "phone": "+998 71 555 0100"}}


def _isolate(out: Path) -> None:
    """Argos and Prefect homes inside OUT's parent, set before either is imported."""
    home = out.parent / f".{out.name}-home"
    os.environ.setdefault("ARGOS_PACKAGES_DIR", str(home / "argos-packages"))
    os.environ.setdefault("ARGOS_CHUNK_TYPE", "SPACY")
    os.environ.setdefault("XDG_CACHE_HOME", str(home / "cache"))
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ.setdefault("PRESSFLOW_MAX_DECODING_LENGTH", "24")  # random weights rarely stop on their own
    Path(os.environ["ARGOS_PACKAGES_DIR"]).mkdir(parents=True, exist_ok=True)
    # argostranslate's spaCy chunker downloads a model unless this folder exists (packages bring their own)
    (Path(os.environ["XDG_CACHE_HOME"]) / "argos-translate" / "spacy" / "senter" / "model").mkdir(parents=True, exist_ok=True)


PENDING = {"id": "2021-11-02-young-scientists-forum", "title": "Young scientists forum opens in Tashkent",
           "date": "2021-11-02", "summary": "Early-career researchers from twelve member countries met in Tashkent.",
           "location": {"city": "Tashkent", "country": "UZ"},
           "body": ["The forum discussed water, energy and health research in Central Asia."],
           "quotes": [{"speaker": "Prof. Aïcha Diallo", "role": "Forum chair", "text": "The next generation is here."}]}


def build(out: Path, languages: list[str], pending: bool = False) -> Path:
    from pressflow.core import db
    from pressflow.drafts import store
    from pressflow.prepare import pipeline
    from pressflow.core.config import Settings
    from pressflow.publish import publish
    from pressflow.records import load_records, validate_record
    from pressflow.translate import testmodel
    from pressflow.translate.models import installed_models

    installed = {(m.source, m.target) for m in installed_models()}
    for target in languages:
        if ("en", target) not in installed:
            testmodel.install_package(testmodel.build_package("en", target, ROOT / "build" / "test-models"))
    settings = Settings(out_dir=out)
    loaded = load_records([ROOT / "events"])
    if loaded.errors:
        raise SystemExit("\n".join(map(str, loaded.errors)))
    batch = [(path, event.model_copy(update={"languages": languages})) for path, event in loaded.events]
    batch.append((None, validate_record({**EXTRA, "languages": languages})))
    report = pipeline.prepare(batch, settings)
    if report.failed:
        raise SystemExit(f"prepare failed: {report.failed}")
    with db.session_scope(settings.db_url) as session:
        for draft in store.list_drafts(session, status=store.PENDING):
            store.set_status(session, draft, store.APPROVED, reviewer="demo")
    published = publish(settings, now=dt.datetime.now(dt.timezone.utc))
    if published.failed or published.errors:
        raise SystemExit(f"publish failed: {published.failed or published.errors}")
    if pending:  # one more release, left waiting for review (for the review page's screenshot)
        pipeline.prepare([(None, validate_record({**PENDING, "languages": ["es"]}))], settings)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--languages", default="es,zh,ar")
    parser.add_argument("--pending", action="store_true", help="also prepare one release left pending review")
    args = parser.parse_args()
    out = args.out.resolve()
    _isolate(out)
    print(build(out, [lang for lang in args.languages.split(",") if lang], args.pending))
    return 0


if __name__ == "__main__":
    sys.exit(main())
