"""Print where an XP's checkpoint, logs and metrics are, and its last metrics.

`python -m audiocraft_mmd.xp_summary solver=compression/encodec_mmd_debug device=cpu` (the same
overrides as the `dora run` that trained it). With `--sig` first, only the XP's `//sig/SIG` reference, for
scripts: `python -m audiocraft_mmd.export --codec $(python -m audiocraft_mmd.xp_summary --sig $XP) --out DIR`.
"""
import json
import sys
import typing as tp

from .environment import CHECKPOINT_NAME, HISTORY_NAME

LIVENESS = ('logmel_corr', 'cross_corr', 'min_usage', 'collapsed')  # does the decoder use its codes?
KEYS = {'train': ('l1', 'msspec', 'mmd', 'mmd_weighted'), 'valid': ('msspec', 'sisnr', 'mmd') + LIVENESS,
        'evaluate': ('sisnr', 'mmd', 'tc', 'tc_mm', 'tc_delay', 'tc_delay_mm', 'n_frames') + LIVENESS}


def sisnr_db_from_logged(audiocraft_sisnr: float) -> float:
    """SI-SNR in dB (higher is better) from audiocraft's `sisnr` loss or logged metric, which is its negative
    (`audiocraft/losses/sisnr.py` returns the opposite of the SI-SNR): a logged `sisnr=34` is -34 dB, a poor
    reconstruction. `metrics.liveness` computes SI-SNR itself; this only reads audiocraft's logs."""
    return -float(audiocraft_sisnr)


def _shown(key: str, value: float) -> str:
    if key == 'sisnr':
        return f"si_snr={sisnr_db_from_logged(value):.4g} dB"
    return f"{key}={value:.4g}"


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> None:
    from .train import main as train_main
    argv = list(sys.argv[1:] if argv is None else argv)
    only_sig = argv[:1] == ['--sig']
    xp = train_main.get_xp(argv[1:] if only_sig else argv)
    if only_sig:
        print(f'//sig/{xp.sig}')
        return
    history_path = xp.folder / HISTORY_NAME
    print(f"XP {xp.sig}: {xp.folder}")
    print(f"  checkpoint: {xp.folder / CHECKPOINT_NAME}")
    print(f"  log:        {xp.folder / 'solver.log.0'}")
    print(f"  metrics:    {history_path}")
    if not history_path.exists():
        print("  (no history yet)")
        return
    history = json.loads(history_path.read_text())
    print(f"  epochs:     {len(history)}")
    for stage, keys in KEYS.items():
        last = next((epoch[stage] for epoch in reversed(history) if stage in epoch), None)
        if last:
            shown = ', '.join(_shown(k, last[k]) for k in keys if k in last)
            print(f"  last {stage}: {shown}")
    print(f"  load it: CompressionSolver.model_from_checkpoint('//sig/{xp.sig}')"
          " (from audiocraft_mmd.solvers.compression)")


if __name__ == '__main__':
    main()
