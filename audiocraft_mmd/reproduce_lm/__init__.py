"""The LM study at CPU scale (`make reproduce-lm`): delay vs flatten LMs on the tokens of the codecs of
`make reproduce` (paper Tables 1-2: MusicGen-MMD vs MusicGen)."""
