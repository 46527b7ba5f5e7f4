"""Where things live: the repository, the config tree, the Dora output folder and team settings.

Team files are `config/teams/<team>.yaml` (team from AUDIOCRAFT_MMD_TEAM, default `default`),
one entry per cluster type, in audiocraft's format so that audiocraft's own
`AudioCraftEnvironment` can read the same file (we point its AUDIOCRAFT_CONFIG variable at it
when the user has not set it; audiocraft 1.3.0 otherwise looks for a `config/` folder beside
site-packages, which its wheel does not ship).
"""
import os
from pathlib import Path
import typing as tp

import omegaconf

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / 'config'
# Manifests (train / valid / evaluate / generate) of the default music set, built by `audiocraft_mmd.data.prepare`.
DATASET_EGS = REPO_ROOT / 'dataset' / 'mmd_music' / 'egs'
# Files of a Dora XP folder, written by flashy's solvers.
CHECKPOINT_NAME = 'checkpoint.th'
HISTORY_NAME = 'history.json'
SIG_PREFIX = '//sig/'
# A pretrained model by name (audiocraft's `//pretrained/NAME`: its hub or a released checkpoint).
PRETRAINED_PREFIX = '//pretrained/'
# Files of an exported MusicGen folder (the layout of audiocraft's releases).
LM_FILE = 'state_dict.bin'
CODEC_FILE = 'compression_state_dict.bin'


def team() -> str:
    return os.environ.get('AUDIOCRAFT_MMD_TEAM', os.environ.get('AUDIOCRAFT_TEAM', 'default'))


def team_config_path() -> Path:
    path = CONFIG_DIR / 'teams' / f'{team()}.yaml'
    if not path.exists():
        known = sorted(p.stem for p in (CONFIG_DIR / 'teams').glob('*.yaml'))
        raise FileNotFoundError(f"Team config {path} not found (AUDIOCRAFT_MMD_TEAM={team()!r}); known: {known}")
    return path


def cluster_config() -> omegaconf.DictConfig:
    """The entry of the team file for this cluster (AUDIOCRAFT_CLUSTER, else `default`)."""
    config = omegaconf.OmegaConf.load(team_config_path())
    cluster = os.environ.get('AUDIOCRAFT_CLUSTER', 'default')
    if cluster not in config:
        raise KeyError(f"Cluster {cluster!r} has no entry in {team_config_path()}; entries: {list(config)}")
    return config[cluster]


def dora_dir() -> Path:
    """AUDIOCRAFT_MMD_DORA_DIR, else the team's dora_dir, else `<repo>/outputs` (git-ignored)."""
    env = os.environ.get('AUDIOCRAFT_MMD_DORA_DIR')
    if env:
        return Path(env).expanduser().resolve()
    configured: tp.Optional[str] = cluster_config().get('dora_dir')
    if configured:
        return Path(configured).expanduser()
    return REPO_ROOT / 'outputs'


def xp_folder(ref: tp.Union[str, Path]) -> Path:
    """The folder `ref` names: `//sig/SIG` is the XP SIG in our Dora folder, anything else a path."""
    ref = str(ref)
    if ref.startswith(SIG_PREFIX):
        return dora_dir() / 'xps' / ref[len(SIG_PREFIX):].strip('/')
    return Path(ref).expanduser()


def repo_relative(path: tp.Union[str, Path]) -> str:
    """An absolute `path` inside the repository, made relative to it (reports get committed, a machine's
    absolute path does not belong there); anything else as given. Lexical: symlinks are not followed."""
    if not Path(path).is_absolute():
        return str(path)
    try:
        return str(Path(path).relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def slurm_partitions(kinds: tp.Sequence[str] = ('team', 'global')) -> str:
    """Comma-separated SLURM partitions of the team for the given kinds."""
    partitions = cluster_config().get('partitions', {})
    names = [str(partitions[kind]) for kind in kinds if kind in partitions]
    return ','.join(dict.fromkeys(names))  # once each: a team whose partitions are one gets `cpu`, not `cpu,cpu`


def point_audiocraft_at_our_teams() -> None:
    """Let audiocraft's AudioCraftEnvironment read our team file (unless the user chose one)."""
    os.environ.setdefault('AUDIOCRAFT_CONFIG', str(team_config_path()))
    os.environ.setdefault('AUDIOCRAFT_TEAM', team())
    os.environ.setdefault('AUDIOCRAFT_DORA_DIR', str(dora_dir()))


def slurm_resources() -> tp.Dict[str, tp.Any]:
    """Resources of one XP from the team file's `slurm` block (gpus, time, cpus_per_gpu, mem_per_gpu), with the
    team's partitions: the keyword arguments of a grid's `launcher.slurm_`."""
    config = cluster_config()
    resources = omegaconf.OmegaConf.to_container(config.get('slurm', {}), resolve=True)
    assert isinstance(resources, dict)
    return {**resources, 'partition': slurm_partitions()}


def dataset_root() -> tp.Optional[Path]:
    """The team's dataset folder (holding egs/<split> manifests), None for the default music set."""
    root = cluster_config().get('dataset_root')
    return Path(root).expanduser() if root else None
