"""scripts/local_slurm.sh's claim on slurm.conf (no cluster needed: `config` only writes and links).

CI once failed here: a fresh-clone test left /etc/slurm/slurm.conf linking into its deleted checkout, and the next
clone's `make test-slurm` refused to start ("not ours"). A stale link of ours is taken over; a running cluster's
link and a real install's file are not.
"""
import os
from pathlib import Path
import subprocess

from audiocraft_mmd.environment import REPO_ROOT

SCRIPT = REPO_ROOT / 'scripts' / 'local_slurm.sh'


def local_slurm(command: str, etc: Path, folder: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, LOCAL_SLURM_ETC=str(etc), LOCAL_SLURM_DIR=str(folder))
    return subprocess.run(['bash', str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=60)


def test_config_links_then_stop_unlinks(tmp_path):
    etc, ours = tmp_path / 'etc', tmp_path / 'ours'
    proc = local_slurm('config', etc, ours)
    assert proc.returncode == 0, proc.stderr
    assert (etc / 'slurm.conf').resolve() == (ours / 'slurm.conf').resolve()
    assert (etc / 'gres.conf').resolve() == (ours / 'gres.conf').resolve()
    assert local_slurm('config', etc, ours).returncode == 0  # idempotent
    assert local_slurm('stop', etc, ours).returncode == 0
    assert not (etc / 'slurm.conf').is_symlink() and not (etc / 'gres.conf').is_symlink()
    assert (ours / 'slurm.conf').exists()  # the folder stays


def test_a_stale_link_of_a_deleted_checkout_is_replaced(tmp_path):
    etc, ours = tmp_path / 'etc', tmp_path / 'ours'
    etc.mkdir()
    (etc / 'slurm.conf').symlink_to(tmp_path / 'deleted_clone' / '.local_slurm' / 'slurm.conf')
    proc = local_slurm('config', etc, ours)
    assert proc.returncode == 0, proc.stderr
    assert 'replacing' in proc.stdout and 'deleted_clone' in proc.stdout
    assert (etc / 'slurm.conf').resolve() == (ours / 'slurm.conf').resolve()


def test_the_link_of_a_running_cluster_is_refused(tmp_path):
    etc, ours, other = tmp_path / 'etc', tmp_path / 'ours', tmp_path / 'other'
    assert local_slurm('config', etc, other).returncode == 0
    (other / 'slurmctld.pid').write_text(str(os.getpid()))  # a live pid: "its slurmctld runs"
    proc = local_slurm('config', etc, ours)
    assert proc.returncode != 0 and 'running local cluster' in proc.stderr and str(other) in proc.stderr
    assert (etc / 'slurm.conf').resolve() == (other / 'slurm.conf').resolve()  # untouched
    assert (etc / 'gres.conf').resolve() == (other / 'gres.conf').resolve()
    (other / 'slurmctld.pid').unlink()  # once it is stopped, the link is ours to take
    assert local_slurm('config', etc, ours).returncode == 0


def test_a_real_install_is_never_touched(tmp_path):
    etc, ours = tmp_path / 'etc', tmp_path / 'ours'
    etc.mkdir()
    real = 'ClusterName=production\n'
    (etc / 'slurm.conf').write_text(real)
    proc = local_slurm('config', etc, ours)
    assert proc.returncode != 0 and 'not ours' in proc.stderr
    assert (etc / 'slurm.conf').read_text() == real and not (etc / 'gres.conf').exists()
    elsewhere = tmp_path / 'site' / 'slurm.conf'  # a link to a file this script did not write
    elsewhere.parent.mkdir()
    elsewhere.write_text(real)
    (etc / 'slurm.conf').unlink()
    (etc / 'slurm.conf').symlink_to(elsewhere)
    proc = local_slurm('config', etc, ours)
    assert proc.returncode != 0 and 'did not write' in proc.stderr
    assert (etc / 'slurm.conf').resolve() == elsewhere.resolve()
