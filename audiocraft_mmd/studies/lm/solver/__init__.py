"""The LM study's solver engine (`make reproduce-lm`): delay vs flatten MusicGen LMs as Dora XPs on the tokens of
the codec study's codecs (paper Tables 1-2: MusicGen-MMD vs MusicGen)."""
