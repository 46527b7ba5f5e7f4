"""Reports carry repository-relative paths: committed reports must not hold a machine's absolute path."""
from pathlib import Path
import re

from audiocraft_mmd.environment import REPO_ROOT
from audiocraft_mmd.reproduce.writers import markdown, portable

DOCS = REPO_ROOT / 'docs'


def _meta(manifest: str, folder: str) -> dict:
    return {'base_solver': 'compression/encodec_mmd_cpu', 'common': [], 'seeds': [0], 'n_segments': 3,
            'protocol': {'manifest': manifest, 'segment_duration': 1.0},
            'statuses': [{'run': 'r', 'folder': folder, 'log': 'config drift: mmd.normalize'}]}


def test_paths_inside_the_repository_become_relative():
    meta = portable(_meta(str(REPO_ROOT / 'dataset' / 'mmd_music' / 'egs' / 'evaluate'),
                          str(REPO_ROOT / 'outputs' / 'xps' / 'abc')))
    assert meta['protocol']['manifest'] == str(Path('dataset/mmd_music/egs/evaluate'))
    assert meta['statuses'][0]['folder'] == str(Path('outputs/xps/abc'))
    assert meta['statuses'][0]['log'] == 'config drift: mmd.normalize'  # not a path: untouched
    assert '`dataset/mmd_music/egs/evaluate`' in markdown({}, [], [], meta).splitlines()[2]


def test_paths_outside_or_relative_stay_as_given():
    meta = portable(_meta('/data/elsewhere/egs', 'outputs/xps/abc'))
    assert meta['protocol']['manifest'] == '/data/elsewhere/egs'
    assert meta['statuses'][0]['folder'] == 'outputs/xps/abc'


def test_committed_reports_hold_no_absolute_machine_path():
    files = [p for p in DOCS.rglob('*') if p.suffix in ('.md', '.json')]
    assert files
    for path in files:
        found = re.findall(r'(?<![\w.])/(?:home|work|tmp|Users|mnt|scratch|root)/[^\s"`]*', path.read_text())
        assert not found, f"{path.relative_to(REPO_ROOT)} holds {found[:3]}"
