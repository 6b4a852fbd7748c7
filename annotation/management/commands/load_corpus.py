"""Load a reference corpus for the fact-check search.

    manage.py load_corpus FILE.jsonl --name NAME [--licence ...] [--source ...] [--replace]
    manage.py load_corpus --dictd /usr/share/dictd/foldoc --name FOLDOC --licence GFDL-1.1+
    manage.py load_corpus --debian-package dict-foldoc [--debian-package dict-jargon ...]
    manage.py load_corpus --demo        # what `make run` does: see below

``--demo`` loads every known Debian dictionary package that is installed among ``dict-foldoc`` and
``dict-jargon``; when none is, it loads the shipped sample ``demo/corpus/jargon-sample.jsonl``
(public-domain Jargon File entries). Corpora already loaded are left alone (``--if-missing`` is
implied), so it can run on every start.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Corpus
from annotation.services import ServiceError
from annotation.tools.corpus import (
    DEBIAN_DICTIONARIES,
    DICTD_DIR,
    CorpusFormatError,
    debian_package_version,
    read_dictd,
    read_jsonl,
)
from annotation.tools.services import corpus_load

DEMO_PACKAGES = ("dict-foldoc", "dict-jargon")
DEMO_SAMPLE = {
    "file": "demo/corpus/jargon-sample.jsonl",
    "name": "Jargon File (sample)",
    "licence": "Public domain (The Jargon File 4.4.7)",
    "source": "400 entries of Debian package dict-jargon 4.4.7-3.1; see demo/corpus/README.md",
    "description": "The on-line hacker Jargon File, version 4.4.7, 29 Dec 2003 (a sample).",
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
            "--demo", action="store_true", help="the demo corpora (installed packages, else the sample)"
        )
        parser.add_argument("--replace", action="store_true", help="replace a corpus of the same name")
        parser.add_argument("--if-missing", action="store_true", help="do nothing for a corpus already loaded")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs: list[dict[str, Any]] = []
        if options["demo"]:
            options["if_missing"] = True
            installed = [p for p in DEMO_PACKAGES if debian_package_version(p)]
            options["debian_package"] = installed
            if not installed:
                self.stdout.write(
                    "no Debian dictionary package installed (apt-get install dict-foldoc dict-jargon); loading the shipped sample"
                )
                sample = DEMO_SAMPLE
                jobs.append({**sample, "documents": lambda: read_jsonl(Path(settings.BASE_DIR) / sample["file"])})
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
