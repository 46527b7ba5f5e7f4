"""Music quality of audio sets, offline: FAD and FAD-infinity (`fad`, `fad_infinity`), tag KL (`tag_kld`) on
musicnn embeddings (`musicnn/`), sets of files embedded once (`sets`), and an embedding-free noise check
(`spectral_flatness`). The solvers' evaluate stages use them through `solvers.music_metrics`."""
