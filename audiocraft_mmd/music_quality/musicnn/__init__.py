"""musicnn, offline: the network (`model`, a torch port), its TensorFlow checkpoint reader (`tf_checkpoint`), and
audio to patch embeddings and tag probabilities (`embedding`)."""
