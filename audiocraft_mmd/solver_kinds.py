"""What a checkpoint holds, by the solver that wrote it (its config's `solver` key): a compression model (codec)
or a MusicGen LM.

Low in the layering, so that the loaders and the export read checkpoints without importing the solvers;
`solvers/builders.py` registers exactly `COMPRESSION_SOLVERS + LM_SOLVERS`.
"""
COMPRESSION_SOLVERS = ('compression', 'compression_mmd')
LM_SOLVERS = ('musicgen', 'musicgen_mmd')
# audiocraft's solver builder also takes `lm`, its older name of the MusicGen solver ("backward compatibility"):
# a checkpoint written under that name holds a MusicGen LM, though our registry does not build it.
LM_CHECKPOINT_SOLVERS = LM_SOLVERS + ('lm',)
