"""The corpus: the TinyStories hub tarball (paper tier) or the synthetic corpus packed
the same way (demo tier), unpacked into ``dataNN.json`` shards with a manifest.

Both sources end as ``TinyStories_all_data.tar.gz``, so the unpacking and checking code
is the same for both.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

from biasdrift.runtime import atomic_path, hf_token, progress, sha256_file, write_json
from biasdrift.tinystories.stories import FEATURES, RecordError, check_record, detect
from biasdrift.tinystories.synthetic import SyntheticParams, generate_shard

log = logging.getLogger(__name__)

TARBALL = "TinyStories_all_data.tar.gz"


def shard_name(index: int) -> str:
    return f"data{index:02d}.json"


def shard_files(shard_dir: str | Path) -> list[Path]:
    """The ``*.json`` shards of a directory, sorted (shard 0 first)."""
    files = sorted(Path(shard_dir).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{shard_dir}: no *.json shards")
    return files


def load_shard(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)
    if not isinstance(records, list):
        raise RecordError(f"{path}: a shard must be a JSON array of records")
    return records


# --------------------------------------------------------------------------- sources
def synthesize_tarball(params: SyntheticParams, tar_path: str | Path) -> dict[str, Any]:
    """Generate the synthetic shards and pack them like the hub tarball."""
    # gzip's header would hold the time and the (temporary) file name: fix both, so the
    # same params give the same bytes on every machine and run
    with (
        atomic_path(tar_path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as tar,
    ):
        for index in progress(range(params.n_shards), desc="synthesize", unit="shard"):
            payload = json.dumps(generate_shard(params, index)).encode()
            info = tarfile.TarInfo(shard_name(index))
            info.size, info.mtime, info.mode = len(payload), 0, 0o644  # reproducible bytes
            tar.addfile(info, io.BytesIO(payload))
    log.info("synthesized %d shards x %d stories", params.n_shards, params.stories_per_shard)
    return {"source": "synthetic", "n_shards": params.n_shards, "stories_per_shard": params.stories_per_shard}


def download_tarball(hf_id: str, revision: str, filename: str, tar_path: str | Path) -> dict[str, Any]:
    """Fetch the tarball from a hub dataset repo (token from HF_TOKEN only) and copy it
    to ``tar_path``."""
    import shutil

    from huggingface_hub import hf_hub_download

    local = hf_hub_download(repo_id=hf_id, filename=filename, repo_type="dataset", revision=revision, token=hf_token())
    with atomic_path(tar_path) as tmp:
        shutil.copyfile(local, tmp)
    log.info("downloaded %s/%s@%s", hf_id, filename, revision)
    return {"source": "hub", "hf_id": hf_id, "revision": revision, "filename": filename}


# --------------------------------------------------------------------------- unpack
def unpack(tar_path: str | Path, shard_dir: str | Path, manifest_path: str | Path) -> dict[str, Any]:
    """Extract the ``*.json`` members into ``shard_dir``, check every record, and write
    the manifest (per-shard counts, per-feature counts, sha256 of every shard)."""
    with atomic_path(shard_dir) as tmp:
        tmp.mkdir()
        with tarfile.open(tar_path, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")]
            if not members:
                raise RecordError(f"{tar_path}: no *.json shards in the archive")
            for member in progress(members, desc="unpack", unit="shard"):
                member.name = Path(member.name).name  # flatten TinyStories_all_data/
                tar.extract(member, tmp, filter="data")
        manifest = corpus_manifest(tmp)
    manifest["tarball_sha256"] = sha256_file(tar_path)
    write_json(manifest_path, manifest)
    return manifest


def corpus_manifest(shard_dir: str | Path) -> dict[str, Any]:
    """Counts and checksums of a shard directory; raises on schema violations."""
    shards, features, no_features, total = [], Counter(), 0, 0
    agree: Counter = Counter()  # records where the marker detector matches the label, per feature
    for path in progress(shard_files(shard_dir), desc="check", unit="shard"):
        records = load_shard(path)
        counts: Counter = Counter()
        for i, record in enumerate(records):
            check_record(record, f"{path.name}[{i}]")
            feats = record["instruction"]["features"]
            counts.update(feats)
            no_features += not feats
            found = detect(record["story"])
            agree.update(f for f in FEATURES if found[f] == (f in feats))
        shards.append(
            {"file": path.name, "records": len(records), "features": dict(counts), "sha256": sha256_file(path)}
        )
        features.update(counts)
        total += len(records)
    if total == 0:
        raise RecordError(f"{shard_dir}: the corpus has no records")
    return {
        "n_shards": len(shards),
        "records": total,
        "features": {f: features.get(f, 0) for f in FEATURES},
        "no_features": no_features,
        # exact (1.0) on the synthetic corpus; on real stories, how far to trust the detector
        "detector_agreement": {f: agree.get(f, 0) / total for f in FEATURES},
        "shards": shards,
    }
