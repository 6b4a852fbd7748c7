"""Rebuild jargon-sample.jsonl from the installed Debian package dict-jargon (public domain).

apt-get install dict-jargon && .venv/bin/python demo/corpus/make_sample.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from annotation.tools.corpus import DEBIAN_DICTIONARIES, DICTD_DIR, read_dictd  # noqa: E402

N = 400


def main() -> None:
    spec = DEBIAN_DICTIONARIES["dict-jargon"]
    docs = [
        d
        for d in read_dictd(DICTD_DIR / spec.database, url_template=spec.url_template)
        if 300 <= len(d["text"]) <= 3000
    ]
    step = len(docs) / N
    picked = [docs[int(i * step)] for i in range(N)]
    with (HERE / "jargon-sample.jsonl").open("w", encoding="utf-8") as out:
        for doc in picked:
            row = {
                "id": doc["external_id"],
                "title": doc["title"],
                "text": doc["text"],
                "source_url": doc["source_url"],
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(picked)} of {len(docs)} entries")


if __name__ == "__main__":
    main()
