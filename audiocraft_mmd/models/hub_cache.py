"""Publish a transformers-format folder (a release, or a stand-in for one) into a Hugging Face hub cache layout, as
`hf download` leaves it, so that `continue_from=//pretrained/ORG/NAME` finds it offline (`HF_HUB_OFFLINE=1`,
`HF_HUB_CACHE=<cache>`): `<cache>/models--ORG--NAME/refs/main` holds a revision, `<cache>/models--ORG--NAME/
snapshots/<revision>/` the files (copies here; the hub's own cache links them to `blobs/`, which the offline lookup
does not need)."""
import hashlib
from pathlib import Path
import shutil


def publish(folder: Path, cache: Path, repo_id: str) -> Path:
    """Copy the files of `folder` into `cache` as the snapshot of `repo_id`; returns the snapshot folder. The
    revision is a hash of the files, so publishing the same folder twice gives the same snapshot."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    if not files:
        raise FileNotFoundError(f"{folder}: no files to publish")
    digest = hashlib.sha1()
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    revision = digest.hexdigest()
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / 'snapshots' / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, snapshot / path.name)
    (repo / 'refs').mkdir(exist_ok=True)
    (repo / 'refs' / 'main').write_text(revision)
    return snapshot
