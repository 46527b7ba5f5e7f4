"""The LMs of the study: codec x pattern x seed, as Dora overrides of one LM config.

Codecs and patterns: the study's vocabulary (`studies.lm.vocabulary`); a pattern is the LM config's
`codebooks_pattern.modeling`, with the same architecture and updates for both.
The LM of seed s is trained on the codec of seed s, so seeds replicate the whole chain (codec + LM).
"""
import dataclasses
import typing as tp

from ....environment import SIG_PREFIX
from ..vocabulary import CODECS, PATTERNS

BASE_SOLVER = 'musicgen/musicgen_mmd_cpu'
# Overrides the plan owns: a common (--set) override of one of these would clash with the plan's.
PLAN_KEYS = ('compression_model_checkpoint', 'codebooks_pattern.modeling', 'seed', 'optim.epochs')


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Seeds, codecs, patterns and epochs (of `optim.updates_per_epoch` updates) of a study."""
    seeds: tp.Tuple[int, ...] = (0, 1, 2)
    codecs: tp.Tuple[str, ...] = tuple(CODECS)
    patterns: tp.Tuple[str, ...] = tuple(PATTERNS)
    epochs: int = 12


# The parallel-MMD codec (paper Table 2) is opt-in (`--codecs baseline mmd mmd_parallel`): its 6 LMs add
# ~50 min on 2 cores to the ~65 min of training and ~40 min of evaluation of the 12 LMs below.
FULL = Schedule(codecs=('baseline', 'mmd'))
# ~30 minutes on 2 cores once the codecs exist: baseline and MMD codecs, 2 seeds, half the training.
QUICK = Schedule(seeds=(0, 1), codecs=('baseline', 'mmd'), epochs=6)


@dataclasses.dataclass(frozen=True)
class LMRun:
    """One LM: its codec (study name and `//sig/` of the codec XP), pattern, seed and epochs."""
    codec: str
    pattern: str
    seed: int
    codec_sig: str
    epochs: int = FULL.epochs

    @property
    def group(self) -> str:
        return self.codec

    @property
    def label(self) -> str:
        return self.pattern

    @property
    def name(self) -> str:
        return f"{self.codec}:{self.pattern}:seed{self.seed}"

    def argv(self, common: tp.Sequence[str] = (), extra: tp.Sequence[str] = ()) -> tp.List[str]:
        """The `dora run` arguments of this LM (the codec runner's `Run.argv` contract)."""
        codec = f'compression_model_checkpoint={SIG_PREFIX}{self.codec_sig}'
        pattern = f'codebooks_pattern.modeling={PATTERNS[self.pattern]}'
        return [f'solver={BASE_SOLVER}', 'device=cpu', *common, codec, pattern,
                f'optim.epochs={self.epochs}', *extra, f'seed={self.seed}']


def check_common(common: tp.Sequence[str]) -> None:
    """Refuse common overrides of keys the plan sets per LM (`studies.common.harness.check_common`)."""
    from ...common.harness import check_common as check
    check(common, PLAN_KEYS, 'LM', "epochs: --epochs; seeds: --seeds; codecs: --codec/--codec-results")


def build_plan(schedule: Schedule, codec_sigs: tp.Mapping[tp.Tuple[str, int], str]) -> tp.List[LMRun]:
    """The LMs of `schedule`, per seed, codec and pattern. `codec_sigs`: (codec, seed) -> codec XP sig;
    a missing codec is an error (resolve codecs first, `codecs.resolve_codecs`)."""
    unknown = sorted(set(schedule.codecs) - set(CODECS)) + sorted(set(schedule.patterns) - set(PATTERNS))
    if unknown:
        raise ValueError(f"unknown codec(s)/pattern(s) {unknown}; known: {list(CODECS)}, {list(PATTERNS)}")
    if not schedule.seeds or schedule.epochs < 1:
        raise ValueError(f"need at least one seed and one epoch, got {schedule}")
    missing = [(c, s) for s in schedule.seeds for c in schedule.codecs if (c, s) not in codec_sigs]
    if missing:
        raise ValueError(f"no codec XP for {missing}")
    return [LMRun(codec, pattern, seed, codec_sigs[codec, seed], schedule.epochs)
            for seed in schedule.seeds for codec in schedule.codecs for pattern in schedule.patterns]
