"""Load a reference corpus for the fact-check search.

    manage.py load_corpus FILE.jsonl --name NAME [--licence ...] [--source ...] [--replace]
    manage.py load_corpus --dictd /usr/share/dictd/foldoc --name FOLDOC --licence GFDL-1.1+
    manage.py load_corpus --debian-package dict-wn [--debian-package dict-foldoc ...]
    manage.py load_corpus --demo        # what `make run` does: see below

``--demo`` loads the shipped ``demo/corpus/wordnet-demo.jsonl``: the WordNet 3.0 entries for the
words of the demo pairs (everyday conversation), derived from Debian's dict-wn (see
demo/corpus/README.md). It needs no Debian package, so it works on a fresh machine; the whole of
WordNet is ``--debian-package dict-wn``. Corpora already loaded are left alone (``--if-missing`` is
implied), so it can run on every start.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.services import ServiceError
from annotation.tools.corpus import (
    DEBIAN_DICTIONARIES,
    DICTD_DIR,
    CorpusFormatError,
    debian_package_version,
    read_dictd,
    read_jsonl,
)
from annotation.tools.models import Corpus
from annotation.tools.services import corpus_load

DEMO_CORPUS = {
    "file": "demo/corpus/wordnet-demo.jsonl",
    "name": "WordNet 3.0 (demo vocabulary)",
    "licence": "WordNet 3.0 licence: WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. "
    "Free to use, copy, modify and distribute with this notice (demo/corpus/WORDNET-LICENSE).",
    "source": "Debian package dict-wn 1:3.0-37, the entries for the words of demo/pairs.jsonl; "
    "see demo/corpus/README.md",
    "description": "WordNet 3.0 (Princeton University): English words with their senses, synonyms and examples.",
}


class Command(BaseCommand):
    help = "Load a reference corpus (JSON Lines, a dictd database, or an installed Debian dictionary package)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", nargs="?", type=Path, help='JSON Lines: {"title", "text", "source_url"?, "id"?} per line'
        )
        parser.add_argument("--name", help="corpus name (defaults for Debian packages)")
        parser.add_argument("--licence", default="")
        parser.add_argument("--source", default="")
        parser.add_argument("--description", default="")
        parser.add_argument("--dictd", type=Path, help="a dictd database path without .index/.dict.dz")
        parser.add_argument("--url-template", default="", help="for --dictd: source URL per entry, with {term}")
        parser.add_argument("--debian-package", action="append", default=[], choices=sorted(DEBIAN_DICTIONARIES))
        parser.add_argument(
            "--demo", action="store_true", help="the demo corpus (WordNet entries for the demo pairs' words)"
        )
        parser.add_argument("--replace", action="store_true", help="replace a corpus of the same name")
        parser.add_argument("--if-missing", action="store_true", help="do nothing for a corpus already loaded")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs: list[dict[str, Any]] = []
        if options["demo"]:
            # The shipped file, not an installed package: the demo works the same on a fresh machine.
            options["if_missing"] = True
            demo = DEMO_CORPUS
            jobs.append({**demo, "documents": lambda: read_jsonl(Path(settings.BASE_DIR) / demo["file"])})
        for package in options["debian_package"]:
            spec = DEBIAN_DICTIONARIES[package]
            version = debian_package_version(package)
            base = DICTD_DIR / spec.database
            if version is None or not base.with_name(base.name + ".index").exists():
                raise CommandError(f"Debian package {package} is not installed (apt-get install {package})")
            jobs.append(
                {
                    "name": options["name"] if options["name"] and len(options["debian_package"]) == 1 else spec.name,
                    "licence": spec.licence,
                    "source": f"Debian package {package} {version} ({base})",
                    "description": spec.description,
                    "documents": lambda base=base, spec=spec: read_dictd(base, url_template=spec.url_template),
                }
            )
        if options["dictd"]:
            if not options["name"]:
                raise CommandError("--dictd needs --name")
            base = options["dictd"]
            jobs.append(
                {
                    "name": options["name"],
                    "licence": options["licence"],
                    "source": options["source"] or f"dictd database {base}",
                    "description": options["description"],
                    "documents": lambda: read_dictd(base, url_template=options["url_template"]),
                }
            )
        if options["file"]:
            if not options["name"]:
                raise CommandError("a JSON Lines file needs --name")
            path = options["file"]
            if not path.exists():
                raise CommandError(f"no such file: {path}")
            jobs.append(
                {
                    "name": options["name"],
                    "licence": options["licence"],
                    "source": options["source"] or path.name,
                    "description": options["description"],
                    "documents": lambda: read_jsonl(path),
                }
            )
        if not jobs:
            raise CommandError("nothing to load: give a FILE, --dictd, --debian-package or --demo")
        for job in jobs:
            self._load(job, replace=options["replace"], if_missing=options["if_missing"])

    def _load(self, job: dict[str, Any], *, replace: bool, if_missing: bool) -> None:
        existing = Corpus.objects.filter(name=job["name"]).first()
        if existing is not None and existing.status == Corpus.Status.READY and if_missing and not replace:
            self.stdout.write(f"corpus {job['name']!r} already loaded ({existing.n_documents} documents)")
            return
        started = time.monotonic()
        try:
            corpus = corpus_load(
                name=job["name"],
                documents=job["documents"](),
                licence=job["licence"],
                source=job["source"],
                description=job["description"],
                replace=replace or existing is not None and existing.status != Corpus.Status.READY,
            )
        except (ServiceError, CorpusFormatError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"loaded corpus {corpus.name!r}: {corpus.n_documents} documents in {time.monotonic() - started:.1f} s"
        )
