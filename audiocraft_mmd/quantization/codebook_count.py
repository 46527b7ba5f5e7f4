# Copyright (c) audiocraft-mmd contributors.
# This source code is licensed under the license found in the
# LICENSE file in the root directory of this source tree.
"""The codebook-count part of audiocraft's `BaseQuantizer` interface, for our quantizers with K codebooks of
which the first n are used (`set_num_codebooks`, as audiocraft's RVQ offers)."""


class SelectableCodebooks:
    """`total_codebooks`, `num_codebooks` and `set_num_codebooks` over `max_n_q` and `n_q`, which the quantizer
    sets; `codec_name` names it in the error."""
    codec_name = 'the quantizer'
    max_n_q: int
    n_q: int

    @property
    def total_codebooks(self) -> int:
        return self.max_n_q

    @property
    def num_codebooks(self) -> int:
        return self.n_q

    def set_num_codebooks(self, n: int) -> None:
        if not 0 < n <= self.max_n_q:
            raise ValueError(f"{self.codec_name} has {self.max_n_q} codebooks, cannot use {n}")
        self.n_q = n
