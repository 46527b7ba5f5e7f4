"""The `codec_training` config block: what makes a small EnCodec learn (see docs/codec_collapse.md).

- `init`: `default` keeps PyTorch's initialization (audiocraft's; DAC's own for a DAC codec);
  `preserve_signal` re-initializes the SEANet (or DAC) encoder and decoder so that their output depends
  on their input at step 0 (`models/initialization.py`).
- `residual_scale`: with `preserve_signal`, the scale of each residual branch's last conv.
- `quantizer_warmup` (DAC only; absent or 0: off): for this many training updates the decoder gets
  `quantized + mix * (latent - quantized)`, `mix` falling linearly from 1 (the continuous latent) to 0 (the
  codes alone; `residual_mix`). A small DAC's decoder learns to use its latent within 40 updates without a
  quantizer, but never learns to use the codes when they are there from the start (docs/codec_collapse.md).
- `dead_codes`: `audiocraft` keeps audiocraft 1.3.0's codebooks (a dead code's replacement is
  overwritten by the EMA update of the same step, so it never takes effect); `replace` uses
  `compat.codebook_expiry.ExpiringCodebook`, whose replacement takes effect (for a DAC codec, whose
  codebooks are learned by gradient: `quantization.code_restarts.CodeRestarts`).

Both act on training only: checkpoints and exports keep audiocraft's (or DAC's) state-dict keys.
"""
import typing as tp

import omegaconf
from torch import nn

from ..compat.codebook_expiry import use_expiring_codebooks
from ..config_validation import is_int, require
from .dac_codec import DACModel, residual_block_types
from .initialization import preserve_signal_

INITS = ('default', 'preserve_signal')
DEAD_CODES = ('audiocraft', 'replace')
CONFIG_KEYS = ('init', 'residual_scale', 'dead_codes', 'quantizer_warmup')


def validate_config(block: omegaconf.DictConfig) -> None:
    """Check the `codec_training` block; errors name the key."""
    unknown = sorted(set(block.keys()) - set(CONFIG_KEYS))
    require(not unknown, 'codec_training', unknown, f"unknown key(s); known keys: {list(CONFIG_KEYS)}")
    require(block.init in INITS, 'codec_training.init', block.init, f"must be one of {INITS}")
    require(isinstance(block.residual_scale, (int, float)) and block.residual_scale >= 0,
            'codec_training.residual_scale', block.residual_scale, "must be a number >= 0")
    require(block.dead_codes in DEAD_CODES, 'codec_training.dead_codes', block.dead_codes,
            f"must be one of {DEAD_CODES}")
    warmup = block.get('quantizer_warmup', 0)
    require(is_int(warmup) and warmup >= 0, 'codec_training.quantizer_warmup', warmup, "must be an integer >= 0")


def residual_mix(update: int, warmup: int) -> float:
    """The share of the quantizer's residual the decoder gets at training update `update` (from 0): 1 at the
    first update (the continuous latent), falling linearly to 0 at update `warmup` (codes only), then 0."""
    return max(0., 1. - update / warmup) if warmup > 0 else 0.


def _residual_types(model: nn.Module) -> tp.Tuple[type, ...]:
    """The residual blocks of the model's encoder and decoder (SEANet's, or DAC's residual units)."""
    if isinstance(model, DACModel):
        return residual_block_types()
    from audiocraft.modules.seanet import SEANetResnetBlock
    return (SEANetResnetBlock,)


def apply_codec_training(model: nn.Module, block: tp.Optional[omegaconf.DictConfig]) -> tp.List[str]:
    """Apply the `codec_training` block to a freshly built compression model; returns what was done."""
    done: tp.List[str] = []
    if block is None:
        return done
    if block.init == 'preserve_signal':
        scale = float(block.residual_scale)
        types = _residual_types(model)
        count = preserve_signal_(model.encoder, scale, types) + preserve_signal_(model.decoder, scale, types)
        done.append(f"preserve_signal init of {count} convs (residual_scale {block.residual_scale})")
    if block.dead_codes == 'replace' and isinstance(model, DACModel):
        model.quantizer.use_code_restarts()
        done.append(f"dead-code restarts in DAC's {model.quantizer.max_n_q} codebooks")
    elif block.dead_codes == 'replace':
        done.append(f"dead-code replacement in {use_expiring_codebooks(model.quantizer)} codebooks")
    return done
