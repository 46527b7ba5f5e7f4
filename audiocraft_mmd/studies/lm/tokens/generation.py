"""Long generations from an LM trained on short segments: windowed continuation.

The study's LMs see `frames`-frame segments only, so a clip of many segments is sampled window by
window: each window is generated from the last `frames - step` frames of the previous one as its
prompt (as audiocraft's MusicGen extends past `max_duration`), `step` new frames at a time.
Unconditional, sampling at temperature 1 from the full distribution (top_k 0).
"""
import torch


@torch.no_grad()
def generate_long(lm, num_clips: int, total_frames: int, frames: int, step: int, seed: int = 0) -> torch.Tensor:
    """codes [num_clips, K, total_frames] sampled from `lm` (context at most `frames` frames)."""
    if not 0 < step <= frames:
        raise ValueError(f"step={step} must be in (0, frames={frames}]")
    torch.manual_seed(seed)
    params = dict(use_sampling=True, temp=1.0, top_k=0, top_p=0.0, cfg_coef=None, remove_prompts=False)
    codes = lm.generate(None, [], num_samples=num_clips, max_gen_len=frames, **params)
    while codes.shape[-1] < total_frames:
        prompt = codes[..., -(frames - step):]
        window = lm.generate(prompt, [], max_gen_len=frames, **params)
        codes = torch.cat([codes, window[..., prompt.shape[-1]:]], dim=-1)
    return codes[..., :total_frames]
