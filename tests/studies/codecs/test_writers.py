"""Reports carry repository-relative paths: committed reports must not hold a machine's absolute path."""
from pathlib import Path
import re

from audiocraft_mmd.environment import REPO_ROOT
from audiocraft_mmd.studies.common.harness import portable
from audiocraft_mmd.studies.codecs.writers import markdown, write_report

DOCS = REPO_ROOT / 'docs'


def _meta(manifest: str, folder: str) -> dict:
    return {'base_solver': 'compression/encodec_mmd_cpu', 'common': [], 'seeds': [0], 'n_segments': 3,
            'protocol': {'manifest': manifest, 'segment_duration': 1.0},
            'statuses': [{'run': 'r', 'folder': folder, 'log': 'config drift: mmd.normalize'}]}


def test_paths_inside_the_repository_become_relative():
    meta = portable(_meta(str(REPO_ROOT / 'dataset' / 'mmd_music' / 'egs' / 'evaluate'),
                          str(REPO_ROOT / 'outputs' / 'xps' / 'abc')), ('manifest',))
    assert meta['protocol']['manifest'] == str(Path('dataset/mmd_music/egs/evaluate'))
    assert meta['statuses'][0]['folder'] == str(Path('outputs/xps/abc'))
    assert meta['statuses'][0]['log'] == 'config drift: mmd.normalize'  # not a path: untouched
    assert '`dataset/mmd_music/egs/evaluate`' in markdown({}, [], [], meta).splitlines()[2]


def test_paths_outside_or_relative_stay_as_given():
    meta = portable(_meta('/data/elsewhere/egs', 'outputs/xps/abc'), ('manifest',))
    assert meta['protocol']['manifest'] == '/data/elsewhere/egs'
    assert meta['statuses'][0]['folder'] == 'outputs/xps/abc'


def test_committed_reports_hold_no_absolute_machine_path():
    files = [p for p in DOCS.rglob('*') if p.suffix in ('.md', '.json')]
    assert files
    for path in files:
        found = re.findall(r'(?<![\w.])/(?:home|work|tmp|Users|mnt|scratch|root)/[^\s"`]*', path.read_text())
        assert not found, f"{path.relative_to(REPO_ROOT)} holds {found[:3]}"


def _entry(**metrics: float) -> dict:
    return {'n': 2, **{m: {'mean': v, 'std': 0.1 * abs(v), 'values': [v, v]} for m, v in metrics.items()}}


def test_report_names_exactly_the_figures_it_draws(tmp_path):
    """A DAC-only sweep draws the Fig. 3 analogue and the MI bars, and the report names those, not Fig. 2."""
    summary = {f'dac:{label}': _entry(mmd=m, tc=t, tc_delay=t - 1, msspec=.3, mi_delay_0=.1, mi_delay_1=.2)
               for label, m, t in (('w0', 2e-3, 7.), ('w1e3', 4e-4, 6.))}
    meta = {**_meta('dataset/x', 'outputs/xps/abc'), 'schedule': {}}
    paths = write_report(tmp_path, [], summary, [], [], meta)
    drawn = sorted(p.name for p in tmp_path.glob('*.png'))
    assert drawn == ['fig3_dac_weight_sweep.png', 'mi_per_codebook.png']
    assert set(drawn) <= set(paths)
    figures_line = [line for line in paths['markdown'].read_text().splitlines() if line.startswith('Figures:')]
    assert len(figures_line) == 1 and 'fig3_dac_weight_sweep.png' in figures_line[0]
    assert 'fig2' not in figures_line[0]
